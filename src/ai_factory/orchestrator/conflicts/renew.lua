-- Extend the TTL of every lock a holder still has; forget keys it lost.
-- KEYS[1] the holder's set.  ARGV[1] holder id, ARGV[2] TTL in ms.
local holder, ttl = ARGV[1], tonumber(ARGV[2])
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('GET', key) == holder then
    redis.call('PEXPIRE', key, ttl)
  else
    redis.call('SREM', KEYS[1], key)
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
