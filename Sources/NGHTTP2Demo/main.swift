// Runs a client Session and a server Session against each other in memory and prints every frame both
// ways, like `nghttp -v`: a GET, a POST whose body is larger than the flow-control window, a response with
// trailers, a PING, and a graceful GOAWAY.
import NGHTTP2

func log(_ direction: String, _ frame: Frame) {
    print("\(direction) \(frame)")
}

let server = try Session(role: .server)
let client = try Session(role: .client)

var bodies: [Int32: [UInt8]] = [:]
var requestBodies: [Int32: Int] = [:]

server.callbacks.onFrameReceived = { frame in
    log("server <-", frame)
    let wantsAnswer: Bool
    switch frame.payload {
    case .headers(.request, _, _, _): wantsAnswer = frame.flags.contains(.endStream)
    case .data: wantsAnswer = frame.flags.contains(.endStream)
    default: wantsAnswer = false
    }
    guard wantsAnswer else { return }
    let received = requestBodies[frame.streamID] ?? 0
    let text = Array("stream \(frame.streamID): received \(received) bytes\n".utf8)
    try server.submitResponse(
        streamID: frame.streamID,
        [[":status", "200"], ["content-type", "text/plain"], ["server", LibraryVersion.current.description]],
        body: .bytes(text, trailers: [["x-bytes-received", "\(received)"]])
    )
}
server.callbacks.onDataChunk = { streamID, data in requestBodies[streamID, default: 0] += data.count }
server.callbacks.onFrameSent = { frame in log("server ->", frame) }

client.callbacks.onFrameReceived = { frame in log("client <-", frame) }
client.callbacks.onFrameSent = { frame in log("client ->", frame) }
client.callbacks.onDataChunk = { streamID, data in bodies[streamID, default: []].append(contentsOf: data) }

try server.submitSettings([Setting(.maxConcurrentStreams, 100), Setting(.noRFC7540Priorities, 1)])
try client.submitSettings([Setting(.enablePush, 0)])

@MainActor func pump() throws {
    while true {
        let toServer = try client.send()
        if !toServer.isEmpty { try server.receive(toServer) }
        let toClient = try server.send()
        if !toClient.isEmpty { try client.receive(toClient) }
        if toServer.isEmpty && toClient.isEmpty { return }
    }
}

print("== \(LibraryVersion.current): client and server Sessions, in memory ==\n")
let get = try client.submitRequest([[":method", "GET"], [":scheme", "http"], [":authority", "localhost"], [":path", "/"]])
let post = try client.submitRequest(
    [[":method", "POST"], [":scheme", "http"], [":authority", "localhost"], [":path", "/upload"]],
    body: .bytes([UInt8](repeating: 0x61, count: 100_000))
)
try client.submitPing(opaqueData: 0x6E67_6874_7470_3221)
try pump()
try server.submitShutdownNotice()
try server.submitGoaway()
try pump()

print()
for id in [get, post] {
    print("stream \(id) body: \(String(decoding: bodies[id] ?? [], as: UTF8.self))", terminator: "")
}
print("client wants read: \(client.wantsRead), wants write: \(client.wantsWrite)")
