"""The one error the stand-in raises: an HTTP error shaped the way GitHub words it."""

from __future__ import annotations

from dataclasses import dataclass, field

DOCS = "https://docs.github.com/rest"


@dataclass
class ApiError(Exception):
    status: int
    message: str
    documentation_url: str = DOCS
    errors: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:  # what a test sees when the control API refuses
        details = "; ".join(str(e.get("message") or e) for e in self.errors)
        return f"{self.status} {self.message}" + (f": {details}" if details else "")

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"message": self.message}
        if self.errors:
            body["errors"] = self.errors
        body["documentation_url"] = self.documentation_url
        body["status"] = str(self.status)
        return body

    @classmethod
    def not_found(cls) -> ApiError:
        return cls(404, "Not Found")

    @classmethod
    def validation(cls, *errors: dict[str, str], documentation_url: str = DOCS) -> ApiError:
        return cls(422, "Validation Failed", documentation_url, list(errors))
