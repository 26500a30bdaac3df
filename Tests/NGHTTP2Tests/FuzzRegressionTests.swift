import Testing
@testable import NGHTTP2

/// Inputs found by the fuzz targets in Fuzz/ (scripts/fuzz), replayed through a `Session`.
@Suite struct FuzzRegressionTests {
    /// An object that the provider and the user data of a response hold, and a weak reference to see it go.
    final class Tracker {}
    final class Probe { weak var tracker: Tracker? }

    /// A server that answers every request with a body whose provider (which never ends it) and whose stream user
    /// data hold a new `Tracker`, and records it weakly in `probe`.
    func server(_ probe: Probe) throws -> Session {
        var options = Session.Options()
        options.noAutoWindowUpdate = true
        let server = try Session(role: .server, options: options)
        server.callbacks.onFrameReceived = { [unowned server] frame in
            guard case .headers(.request, _, _, _) = frame.payload else { return }
            let tracker = Tracker()
            probe.tracker = tracker
            try server.submitResponse(
                streamID: frame.streamID,
                [[":status", "200"]],
                body: DataProvider(read: { _, _ in
                    _ = tracker
                    return .deferred
                })
            )
            server.setUserData(tracker, streamID: frame.streamID)
        }
        try server.submitSettings([Setting(.maxConcurrentStreams, 100), Setting(.noRFC7540Priorities, 1)])
        _ = try server.send()
        return server
    }

    /// The types of the frames in `bytes`.
    func frameTypes(_ bytes: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var offset = 0
        while offset + 9 <= bytes.count {
            types.append(bytes[offset + 3])
            offset += 9 + (Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]))
        }
        return types
    }

    /// FuzzServerConnection, leak-44a4729b (minimized): SETTINGS, a GET on stream 1 with END_STREAM, and in the same
    /// read the header of a DATA frame on an idle stream, a connection error. The server answered the GET inside
    /// the read; libnghttp2 then terminated the session, so stream 1 never closed and its provider stayed in the
    /// session. In `ConnectionHandler` the provider (the stream's context) refers back to the connection, which owns
    /// the session: the whole connection leaked (about 32 KB, LeakSanitizer).
    static let connectionErrorAfterAResponse: [UInt8] =
        Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [
            0x00, 0x00, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x64, 0x00,
            0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x01, 0x00, 0x00, 0x27, 0x01, 0x05,
            0x00, 0x00, 0x00, 0x01, 0x82, 0x04, 0x87, 0x61, 0x36, 0x0c, 0xd4, 0x16, 0xc4, 0x7f, 0x86, 0x41,
            0x8b, 0x08, 0x9d, 0x5c, 0x0b, 0x81, 0x70, 0xdc, 0x69, 0xa6, 0x5b, 0x67, 0x7a, 0x88, 0x25, 0xb6,
            0x50, 0xc3, 0xab, 0xbc, 0xf2, 0xe1, 0x53, 0x03, 0x2a, 0x2f, 0x2a, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x04, 0x00, 0x01, 0x00,
        ]

    @Test func aSessionTerminatedByAConnectionErrorLetsGoOfTheProvidersOfStreamsLeftOpen() throws {
        let probe = Probe()
        let server = try self.server(probe)
        try server.receive(Self.connectionErrorAfterAResponse)
        #expect(server.activeDataProviderCount == 1, "stream 1's response waits to be sent")
        let reply = try server.send()
        #expect(frameTypes(reply).last == 0x7, "GOAWAY last: \(frameTypes(reply))")
        #expect(!server.wantsRead && !server.wantsWrite, "the session is over")
        #expect(server.activeDataProviderCount == 0)
        #expect(server.userDataCount == 1, "user data stays until released or the session goes")
        #expect(probe.tracker != nil)
        server.releaseStreamObjects()
        #expect(probe.tracker == nil, "nothing holds the response's objects any more")
    }

    @Test func releasingStreamObjectsDropsProvidersAndUserDataOfOpenStreams() throws {
        let probe = Probe()
        let server = try self.server(probe)
        let client = try Session(role: .client)
        try client.submitSettings([])
        try client.submitRequest([[":method", "GET"], [":scheme", "http"], [":authority", "a"], [":path", "/"]])
        try server.receive(try client.send())
        _ = try server.send()  // the HEADERS; the body is deferred
        #expect(server.streamExists(1) && server.activeDataProviderCount == 1 && server.userDataCount == 1)
        #expect(probe.tracker != nil)
        server.releaseStreamObjects()  // the socket closed: the stream never will
        #expect(server.activeDataProviderCount == 0 && server.userDataCount == 0)
        #expect(probe.tracker == nil)
        server.resumeData(streamID: 1)
        _ = try server.send()  // a read with no provider resets the stream instead of crashing
    }
}
