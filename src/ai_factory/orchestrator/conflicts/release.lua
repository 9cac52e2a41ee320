-- Release locks, but only those the caller holds (the holder id is the token).
-- KEYS/ARGV as in acquire.lua (ARGV[2] unused).  Returns the paths released.
local holder = ARGV[1]
local released = {}
for i = 3, #KEYS do
  if redis.call('GET', KEYS[i]) == holder then
    redis.call('DEL', KEYS[i])
    redis.call('SREM', KEYS[1], KEYS[i])
    redis.call('SREM', KEYS[2], ARGV[i])
    released[#released + 1] = ARGV[i]
  end
end
return released
