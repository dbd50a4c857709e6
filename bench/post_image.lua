-- wrk script: POST prebuilt bodies in turn, and report the summary as one JSON line.
-- BENCH_BODIES: a file listing body files, one path a line (bench/upload_mix.py writes them); each
-- thread starts at its own place in the list and sends the bodies in order, round and round.
-- BENCH_CONTENT_TYPE: their Content-Type; BENCH_JSON_LENGTH, when set, the Open Inference
-- Protocol's Inference-Header-Content-Length (binary tensor data after the JSON).
local function read(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*all")
  file:close()
  return data
end

local threads = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

local requests_to_send = {}
local next_request = 1

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
  local json_length = os.getenv("BENCH_JSON_LENGTH")
  if json_length then
    wrk.headers["Inference-Header-Content-Length"] = json_length
  end
  for path in io.lines(os.getenv("BENCH_BODIES")) do
    requests_to_send[#requests_to_send + 1] = wrk.format(nil, nil, nil, read(path))
  end
  next_request = (thread_number * 7) % #requests_to_send + 1
end

function request()
  local this = requests_to_send[next_request]
  next_request = next_request % #requests_to_send + 1
  return this
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
