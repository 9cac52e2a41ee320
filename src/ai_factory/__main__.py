from ai_factory.cli import main

main()
