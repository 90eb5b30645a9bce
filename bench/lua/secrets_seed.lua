-- secrets_seed.lua - writes secrets 0..SV_KEYS-1 once each:
-- wrk -t2 -c64 -d30s -s bench/lua/secrets_seed.lua URL -- 2
-- (the number after -- must equal -t). Thread t of T writes t, t+T, t+2T, ...
-- and stops when its share is done (wrk itself runs for -d).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "secrets_common.lua")

c.install_counters({[200] = true, [201] = true}, "failed writes")
local count_thread = setup
local count = 0

-- setup runs in the main Lua state before each thread starts: it numbers the
-- threads (a thread may already run before the next one is set up, so the
-- thread count comes from the command line)
function setup(thread)
   thread:set("id", count)
   count = count + 1
   count_thread(thread)
end

function init(args)
   nthreads = tonumber(args[1]) or error("pass the thread count after --, e.g. -- 2")
   next_i = id
end

function request()
   local i = next_i
   next_i = next_i + nthreads
   if i >= c.keys then
      wrk.thread:stop()
      i = i % c.keys
   end
   return wrk.format("PUT", c.path(i), c.headers, c.body)
end
