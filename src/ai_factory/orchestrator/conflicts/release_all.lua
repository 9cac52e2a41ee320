-- Release every lock a holder has, using its set of held keys (never KEYS/SCAN).
-- KEYS[1] the holder's set.  ARGV[1] holder id.  Returns how many were released.
-- The lock keys share KEYS[1]'s hash tag, so they live in the same slot.
local holder = ARGV[1]
local released = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('GET', key) == holder then
    redis.call('DEL', key)
    released = released + 1
  end
end
redis.call('DEL', KEYS[1])
return released
