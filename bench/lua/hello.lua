-- hello.lua - the ceiling: a bare h2o hello handler, same client settings.
-- wrk -t2 -c64 -d30s -s bench/lua/hello.lua URL
function request()
   return wrk.format("GET", "/")
end
