// A short ClientSession example: several requests at once on one HTTP/2 connection, a streamed upload,
// a streamed download read chunk by chunk, and a PING.
// Usage: ClientExample http://127.0.0.1:8080   or   ClientExample https://localhost:8443 ca.pem
import Foundation
import NGHTTP2Async
import HTTPTypes
import NIOCore

let arguments = Array(CommandLine.arguments.dropFirst())
let base = arguments.first ?? "http://127.0.0.1:8080"
var configuration = ClientSession.Configuration()
if arguments.count > 1 {  // trust this CA (e.g. a test CA) instead of the system's
    var tls = NGHTTP2TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .file(arguments[1])
    configuration.tls = tls
}
let client = try await ClientSession.connect(to: base, configuration: configuration)
print("connected to \(base) (\(client.scheme))")

// Three requests in flight at once, on one connection.
async let get = client.get("/get")
async let delayed = client.get("/delay/0.2")
async let headers = client.get("/headers", headers: [.accept: "application/json"])
for response in try await [get, delayed, headers] {
    print("stream \(response.streamID): \(response.status.code), \(try await response.bytes().count) bytes")
}

// An upload written chunk by chunk; the writer waits whenever the flow-control window is full.
let upload = try await client.post("/echo", body: .writer { writer in
    for index in 0..<64 { try await writer.write(String(repeating: "\(index % 10)", count: 16_384)) }
})
print("echoed \(try await upload.bytes(upTo: 2 << 20).count) bytes")

// A download read as it arrives: the window is credited only as chunks are taken.
let download = try await client.get("/stream-bytes/1048576?chunk_size=65536")
var received = 0
for try await chunk in download.body { received += chunk.readableBytes }
print("streamed \(received) bytes")

print("ping round trip: \(try await client.ping())")
await client.close()
