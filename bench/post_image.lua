-- wrk script: POST the same body on every request and report the summary as one JSON line.
-- BENCH_IMAGE: a picture, sent as a multipart upload (field "image", BENCH_FIELDS times).
-- BENCH_BODY: a prebuilt body instead, with BENCH_CONTENT_TYPE, and BENCH_JSON_LENGTH, when set, as
-- the Open Inference Protocol's Inference-Header-Content-Length (binary tensor data after the JSON).
local function read(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*all")
  file:close()
  return data
end

wrk.method = "POST"
local body = os.getenv("BENCH_BODY")
if body then
  wrk.body = read(body)
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
  local json_length = os.getenv("BENCH_JSON_LENGTH")
  if json_length then
    wrk.headers["Inference-Header-Content-Length"] = json_length
  end
else
  local image = read(os.getenv("BENCH_IMAGE"))
  local fields = tonumber(os.getenv("BENCH_FIELDS") or "1")
  local boundary = "----mnistflaskbench"
  local parts = {}
  for _ = 1, fields do
    parts[#parts + 1] = "--" .. boundary .. "\r\n"
      .. 'Content-Disposition: form-data; name="image"; filename="digit.jpg"\r\n'
      .. "Content-Type: image/jpeg\r\n\r\n" .. image .. "\r\n"
  end
  wrk.body = table.concat(parts) .. "--" .. boundary .. "--\r\n"
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
