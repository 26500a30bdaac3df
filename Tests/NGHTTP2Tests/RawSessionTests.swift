import CNGHTTP2
import Testing
@_spi(RawHandle) import NGHTTP2

/// `Session.withUnsafeRawSession`: libnghttp2's C API on the handle under a typed session.
@Suite struct RawSessionTests {
    @Test("the raw handle reads the peer's SETTINGS, which only the C API gives")
    func rawHandleReadsRemoteSettings() throws {
        let client = try Endpoint(.client)
        let server = try Endpoint(.server, settings: [Setting(.maxConcurrentStreams, 37), Setting(.initialWindowSize, 1000)])
        func remote(_ id: nghttp2_settings_id) -> UInt32 {
            client.session.withUnsafeRawSession { nghttp2_session_get_remote_settings($0, id) }
        }
        // Before the server's SETTINGS: what libnghttp2 assumes (100 streams, its default for
        // nghttp2_option_set_peer_max_concurrent_streams) and RFC 9113's initial 65535-byte window.
        #expect(remote(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 100)
        #expect(remote(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) == 65535)
        try exchange(client, server)
        #expect(remote(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 37)
        #expect(remote(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) == 1000)
    }

    @Test("a frame submitted through the raw handle goes out with the next send")
    func rawSubmitGoesOutWithTheNextSend() throws {
        let client = try Endpoint(.client)
        let server = try Endpoint(.server)
        try exchange(client, server)
        let opaque: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let rv = client.session.withUnsafeRawSession { handle in
            nghttp2_submit_ping(handle, UInt8(NGHTTP2_FLAG_NONE.rawValue), opaque)
        }
        #expect(rv == 0)
        try exchange(client, server)
        let pings = server.receivedFrames(.ping).filter { !$0.flags.contains(.ack) }
        #expect(pings.count == 1)
        guard case .ping(let data)? = pings.first?.payload else {
            Issue.record("no PING payload: \(pings)")
            return
        }
        #expect(data == 0x0102_0304_0506_0708)
    }
}
