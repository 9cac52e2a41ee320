-- All-or-nothing acquire of a set of file locks for one holder.
-- KEYS[1] the holder's set of lock keys, KEYS[2] the repo's set of locked paths,
-- KEYS[3..n] lock keys.  ARGV[1] holder id, ARGV[2] TTL in ms, ARGV[3..n] the paths
-- (ARGV[i] is the path of KEYS[i]).  Returns the paths held by someone else; when that
-- list is empty every lock is now held (or refreshed) by the caller.
local holder, ttl = ARGV[1], tonumber(ARGV[2])
local conflicts = {}
for i = 3, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if current and current ~= holder then
    conflicts[#conflicts + 1] = ARGV[i]
  end
end
if #conflicts > 0 then
  return conflicts
end
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], holder, 'PX', ttl)
  redis.call('SADD', KEYS[1], KEYS[i])
  redis.call('SADD', KEYS[2], ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ttl)
return conflicts
