import Testing
@testable import NGHTTP2

/// Bytes a real client sends: preface, SETTINGS, a GET, a POST with a body, a PING, a request whose field block
/// needs CONTINUATION frames, and a RST_STREAM.
func recordedClientTraffic() throws -> [UInt8] {
    let client = try Session(role: .client)
    try client.submitSettings([Setting(.enablePush, 0), Setting(.initialWindowSize, 1 << 20)])
    try client.submitRequest(getRequest)
    try client.submitRequest(request("POST", "/upload", [["content-type", "text/plain"]]), body: .bytes(pattern(40_000)))
    try client.submitPing(opaqueData: 7)
    // About 40 KB of header fields: a HEADERS frame and two CONTINUATION frames.
    let bulky = (0..<20).map { HeaderField("x-field-\($0)", String(repeating: Character(UnicodeScalar(97 + $0)!), count: 2_000)) }
    let bulkyID = try client.submitRequest(request("GET", "/bulky", bulky))
    var bytes = try client.send()
    try client.submitRSTStream(streamID: bulkyID, errorCode: .cancel)
    bytes += try client.send()
    return bytes
}

/// What a server saw, in a form that does not depend on how the bytes were split.
struct ServerObservations: Equatable {
    var frames: [Frame] = []
    var fields: [[HeaderField]] = []
    var bodies: [Int32: [UInt8]] = [:]
    var closed: [Int32: ErrorCode] = [:]
}

func observingServer(_ observations: UnsafeMutablePointer<ServerObservations>) throws -> Session {
    let server = try Session(role: .server)
    server.callbacks.onFrameReceived = { frame in
        observations.pointee.frames.append(frame)
        if case .headers(_, let fields, _, _) = frame.payload { observations.pointee.fields.append(fields) }
    }
    server.callbacks.onDataChunk = { id, data in observations.pointee.bodies[id, default: []].append(contentsOf: data) }
    server.callbacks.onStreamClosed = { id, code in observations.pointee.closed[id] = code }
    try server.submitSettings([Setting(.maxConcurrentStreams, 100)])
    return server
}

@Suite struct BadInputTests {
    @Test func oneByteAtATimeGivesTheSameEventsAsWhole() throws {
        let traffic = try recordedClientTraffic()
        var whole = ServerObservations()
        var split = ServerObservations()
        try withUnsafeMutablePointer(to: &whole) { pointer in
            let server = try observingServer(pointer)
            #expect(try server.receive(traffic) == traffic.count)
            _ = try server.send()
        }
        try withUnsafeMutablePointer(to: &split) { pointer in
            let server = try observingServer(pointer)
            for byte in traffic { #expect(try server.receive([byte]) == 1) }
            _ = try server.send()
        }
        #expect(whole.frames.count >= 6)
        #expect(whole.fields.contains { $0[name: ":path"] == "/bulky" && $0.count == 24 })
        #expect(whole.bodies[3] == pattern(40_000))
        #expect(whole.closed[5] == .cancel)
        #expect(split == whole)
    }

    @Test func badClientPrefaceIsTheTypedFatalError() throws {
        let server = try Session(role: .server)
        #expect(throws: NGHTTP2Error.badClientMagic) {
            try server.receive(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        }
        #expect(NGHTTP2Error.badClientMagic.isFatal)
        let truncated = try Session(role: .server)
        #expect(try truncated.receive(Array(HTTP2Constants.clientPreface.prefix(10))) == 10)
        #expect(throws: NGHTTP2Error.badClientMagic) { try truncated.receive(Array("XXXX".utf8)) }
    }

    @Test func randomBytesNeverCrashAServer() throws {
        var generator = SplitMix64(seed: 0x5EED)
        var outcomes: [String: Int] = [:]
        for round in 0..<3_000 {
            let server = try Session(role: .server)
            try server.submitSettings([Setting(.maxConcurrentStreams, 100)])
            let length = Int.random(in: 0...600, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Half the inputs start with a valid preface, so the frame parser sees the garbage.
            if round % 2 == 0 { bytes = HTTP2Constants.clientPreface + bytes }
            do {
                try server.receive(bytes)
                _ = try server.send()
                outcomes["accepted", default: 0] += 1
            } catch let error as NGHTTP2Error {
                outcomes["\(error.code)", default: 0] += 1
                try server.terminate(errorCode: .protocolError)
                _ = try server.send()
            }
        }
        #expect(outcomes.values.reduce(0, +) == 3_000)
        #expect(outcomes["-903"] ?? 0 > 1_000)  // bad magic for the inputs without a preface
    }

    @Test func truncatedAndCorruptedTrafficNeverCrashesAServer() throws {
        let traffic = try recordedClientTraffic()
        var generator = SplitMix64(seed: 42)
        var typedErrors = 0
        for cut in stride(from: 0, to: traffic.count, by: 97) {
            var bytes = Array(traffic.prefix(cut))
            // Flip a few bytes after the preface in every other sample.
            if cut % 2 == 1, bytes.count > 30 {
                for _ in 0..<3 { bytes[Int.random(in: 24..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            }
            let server = try Session(role: .server)
            do {
                try server.receive(bytes)
                _ = try server.send()
            } catch is NGHTTP2Error {
                typedErrors += 1
            }
        }
        #expect(typedErrors < traffic.count / 97)
    }

    @Test func aStreamErrorResetsOnlyThatStream() throws {
        // A DATA frame on a stream that was never opened is a connection error; a bad header on one stream is a
        // stream error: the other stream still gets its response.
        let server = try echoServer()
        var options = Session.Options()
        options.noHTTPMessaging = true
        let rogue = try Session(role: .client, options: options)  // skips the checks our client makes
        try rogue.submitSettings([])
        let bad = try rogue.submitRequest([[":method", "GET"], [":path", "/"], [":scheme", "http"]] + [["connection", "close"]])
        let good = try rogue.submitRequest(getRequest)
        try server.session.receive(try rogue.send())
        let reply = try server.session.send()
        var closed: [Int32: ErrorCode] = [:]
        var statuses: [Int32: String] = [:]
        rogue.callbacks.onStreamClosed = { id, code in closed[id] = code }
        rogue.callbacks.onHeader = { id, _, field in if field.name == ":status" { statuses[id] = field.value } }
        try rogue.receive(reply)
        #expect(closed[bad] == .protocolError)
        #expect(statuses[good] == "200")
    }
}
