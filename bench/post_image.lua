-- wrk script: POST the same multipart upload (field "image") on every request and report
-- the summary as one JSON line. The upload's path comes from the BENCH_IMAGE variable.
local path = os.getenv("BENCH_IMAGE")
local file = assert(io.open(path, "rb"))
local image = file:read("*all")
file:close()

local fields = tonumber(os.getenv("BENCH_FIELDS") or "1")
local boundary = "----mnistflaskbench"
local parts = {}
for _ = 1, fields do
  parts[#parts + 1] = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="image"; filename="digit.jpg"\r\n'
    .. "Content-Type: image/jpeg\r\n\r\n" .. image .. "\r\n"
end
wrk.method = "POST"
wrk.body = table.concat(parts) .. "--" .. boundary .. "--\r\n"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
