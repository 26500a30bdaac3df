import Testing
@testable import NGHTTP2

/// A server that answers every request: GET with `responseBody`, anything else by echoing the request body.
func echoServer(responseBody: [UInt8] = Array("hello".utf8), options: Session.Options = Session.Options()) throws -> Endpoint {
    let server = try Endpoint(.server, options: options)
    server.onFieldBlock = { endpoint, streamID, category, fields, flags in
        guard category == .request else { return }
        if flags.contains(.endStream) {
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]], body: .bytes(responseBody))
        }
    }
    server.session.callbacks.onFrameReceived = { [unowned server] frame in
        server.received.append(frame)
        switch frame.payload {
        case .headers(let category, let fields, _, _):
            server.fieldBlocks[frame.streamID, default: []].append(fields)
            try server.onFieldBlock?(server, frame.streamID, category, fields, frame.flags)
        case .data where frame.flags.contains(.endStream):
            let body = server.bodies[frame.streamID] ?? []
            try server.session.submitResponse(streamID: frame.streamID, [[":status", "200"]], body: .bytes(body))
        default:
            break
        }
    }
    return server
}

@Suite struct SessionTests {
    @Test func getAndPostWithBodiesLargerThanTheWindow() throws {
        let big = pattern(5 * 65_535 + 17)
        let server = try echoServer(responseBody: big)
        let client = try Endpoint(.client)
        let get = try client.session.submitRequest(getRequest)
        let upload = pattern(4 * 65_535 + 3, seed: 7)
        let post = try client.session.submitRequest(request("POST", "/echo"), body: .bytes(upload))
        try exchange(client, server)
        #expect(client.head(get)[name: ":status"] == "200")
        #expect(client.bodies[get] == big)
        #expect(server.bodies[post] == upload)
        #expect(client.bodies[post] == upload)
        #expect(client.closed[get] == .noError && client.closed[post] == .noError)
        #expect(client.session.activeDataProviderCount == 0 && server.session.activeDataProviderCount == 0)
    }

    @Test func twoHundredMultiplexedStreams() throws {
        let server = try echoServer()
        let client = try Endpoint(.client)
        let ids = try (0..<200).map { try client.session.submitRequest(request("GET", "/\($0)")) }
        try exchange(client, server)
        #expect(Set(ids).count == 200)
        for id in ids {
            #expect(client.bodies[id] == Array("hello".utf8))
            #expect(client.closed[id] == .noError)
        }
        // The server advertised MAX_CONCURRENT_STREAMS 100, so the client never had more open at once.
        #expect(client.session.remoteSetting(.maxConcurrentStreams) == 100)
        #expect(server.head(ids[199])[name: ":path"] == "/199")
    }

    @Test func responseAndRequestTrailers() throws {
        let server = try Endpoint(.server)
        server.onFieldBlock = { endpoint, streamID, category, _, flags in
            if category == .headers, flags.contains(.endStream) {  // the request's trailers
                try endpoint.session.submitResponse(
                    streamID: streamID, [[":status", "200"]],
                    body: .bytes(pattern(100_000), trailers: [["grpc-status", "0"], ["x-checksum", "abc"]])
                )
            }
        }
        let client = try Endpoint(.client)
        let id = try client.session.submitRequest(request("POST", "/"), body: .bytes(pattern(10), trailers: [["x-req", "1"]]))
        try exchange(client, server)
        #expect(server.fieldBlocks[id]?.last == [["x-req", "1"]])
        #expect(client.bodies[id] == pattern(100_000))
        #expect(client.fieldBlocks[id]?.count == 2)
        #expect(client.fieldBlocks[id]?.last == [["grpc-status", "0"], ["x-checksum", "abc"]])
        #expect(client.closed[id] == .noError)
        #expect(throws: NGHTTP2Error.invalidArgument) { try client.session.submitTrailer(streamID: id, fields: [[":status", "1"]]) }
    }

    @Test func informationalResponseBeforeTheFinalOne() throws {
        let server = try Endpoint(.server)
        server.onFieldBlock = { endpoint, streamID, category, _, _ in
            guard category == .request else { return }
            try endpoint.session.submitHeaders(streamID: streamID, [[":status", "103"], ["link", "</style.css>; rel=preload"]])
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]], body: .bytes([1, 2, 3]))
        }
        let client = try Endpoint(.client)
        let id = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        let blocks = client.fieldBlocks[id] ?? []
        #expect(blocks.count == 2)
        #expect(blocks.first?[name: ":status"] == "103")
        #expect(blocks.last?[name: ":status"] == "200")
        #expect(client.bodies[id] == [1, 2, 3])
    }

    @Test func manualFlowControlStallsAtTheWindowUntilConsumed() throws {
        let server = try echoServer(responseBody: pattern(200_000))
        var options = Session.Options()
        options.noAutoWindowUpdate = true
        let client = try Endpoint(.client, options: options)
        client.consumesOnArrival = false
        let id = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        #expect(client.bodies[id]?.count == 65_535)
        #expect(client.session.localWindowSize(streamID: id) == 0)
        #expect(client.session.localWindowSize == 0)
        #expect(client.closed[id] == nil)
        // Credit what was read: the transfer goes on to the end.
        while client.closed[id] == nil {
            let unread = client.session.effectiveReceivedDataLength(streamID: id) ?? 0
            try client.session.consume(streamID: id, count: unread)
            try exchange(client, server)
        }
        #expect(client.bodies[id] == pattern(200_000))
        // consume is only for sessions without automatic window updates.
        let auto = try Endpoint(.client)
        #expect(throws: NGHTTP2Error.invalidState) { try auto.session.consume(streamID: 1, count: 1) }
    }

    @Test func deferredDataResumes() throws {
        var chunks: [[UInt8]] = []
        var finished = false
        let server = try Endpoint(.server)
        server.onFieldBlock = { endpoint, streamID, category, _, _ in
            guard category == .request else { return }
            let provider = DataProvider { buffer, _ in
                if chunks.isEmpty { return finished ? .bytes(0, flags: .endOfData) : .deferred }
                let chunk = chunks.removeFirst()
                buffer.copyMemory(from: UnsafeRawBufferPointer(start: chunk, count: chunk.count))
                return .bytes(chunk.count)
            }
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]], body: provider)
        }
        let client = try Endpoint(.client)
        let id = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        #expect(client.head(id)[name: ":status"] == "200")
        #expect(client.bodies[id] == nil)
        #expect(server.session.wantsWrite == false)
        chunks = [[1, 2], [3]]
        server.session.resumeData(streamID: id)
        try exchange(client, server)
        #expect(client.bodies[id] == [1, 2, 3])
        #expect(client.closed[id] == nil)
        finished = true
        server.session.resumeData(streamID: id)
        try exchange(client, server)
        #expect(client.closed[id] == .noError)
        server.session.resumeData(streamID: id)  // nothing deferred: harmless
    }

    @Test func resetStreamReachesThePeerAndLeavesOthersAlone() throws {
        let server = try echoServer(responseBody: pattern(300_000))
        let client = try Endpoint(.client)
        let a = try client.session.submitRequest(getRequest)
        let b = try client.session.submitRequest(getRequest)
        try exchange(client, server, maxRounds: 1)  // both requests reach the server, the first DATA come back
        #expect(client.bodies[a] != nil && client.closed[a] == nil)
        try client.session.submitRSTStream(streamID: a, errorCode: .cancel)
        try exchange(client, server)
        #expect(server.closed[a] == .cancel)
        #expect(client.closed[a] == .cancel)
        #expect(client.bodies[b] == pattern(300_000))
        #expect(client.closed[b] == .noError)
        #expect(server.receivedFrames(.rstStream).first?.payload == .rstStream(.cancel))
    }

    @Test func goawayAndShutdownNoticeLetInFlightStreamsFinish() throws {
        let server = try Endpoint(.server)  // answers only when told to
        let client = try Endpoint(.client)
        let first = try client.session.submitRequest(getRequest)
        try exchange(client, server)

        try server.session.submitShutdownNotice()
        try exchange(client, server)
        guard case .goaway(let noticeLast, .noError, _) = client.receivedFrames(.goaway).first?.payload else {
            Issue.record("no shutdown notice")
            return
        }
        #expect(noticeLast == Int32.max)
        #expect(client.session.isRequestAllowed == false)

        try server.session.submitGoaway(errorCode: .noError, debugData: Array("bye".utf8))
        try exchange(client, server)
        guard case .goaway(let last, .noError, let debug) = client.receivedFrames(.goaway).last?.payload else {
            Issue.record("no final GOAWAY")
            return
        }
        #expect(last == first)
        #expect(debug == Array("bye".utf8))
        // The in-flight stream still completes.
        try server.session.submitResponse(streamID: first, [[":status", "200"]], body: .bytes([1]))
        try exchange(client, server)
        #expect(client.bodies[first] == [1])
        #expect(client.closed[first] == .noError)
        // A request after GOAWAY never goes out: libnghttp2 reports it as not sent.
        let late = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        #expect(client.notSent.contains { $0.0.streamID == late && $0.1 == .startStreamNotAllowed })
        #expect(server.fieldBlocks[late] == nil)
        #expect(client.session.wantsRead == false && client.session.wantsWrite == false)
        // Shutdown notices are for servers.
        #expect(throws: NGHTTP2Error.invalidState) { try client.session.submitShutdownNotice() }
    }

    @Test func streamsAboveTheGoawayLastStreamIDAreNotProcessed() throws {
        let server = try Endpoint(.server)  // never answers
        let client = try Endpoint(.client)
        let a = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        try server.session.submitGoaway(lastStreamID: a, errorCode: .noError)
        let b = try client.session.submitRequest(getRequest)
        try deliver(server.session.send(), to: client, chunkSize: nil)
        try exchange(client, server)
        // Stream b was submitted but GOAWAY arrived before it went out: never sent, safe to retry.
        #expect(client.notSent.contains { $0.0.streamID == b && $0.1 == .startStreamNotAllowed })
        #expect(client.closed[a] == nil)
        #expect(client.session.userDataCount == 0)
    }

    @Test func pingIsAcknowledged() throws {
        let server = try Endpoint(.server)
        let client = try Endpoint(.client)
        try client.session.submitPing(opaqueData: 0x0102_0304_0506_0708)
        try exchange(client, server)
        #expect(server.receivedFrames(.ping).first?.payload == .ping(opaqueData: 0x0102_0304_0506_0708))
        let ack = client.receivedFrames(.ping).first
        #expect(ack?.flags.contains(.ack) == true)
        #expect(ack?.payload == .ping(opaqueData: 0x0102_0304_0506_0708))
    }

    @Test func localSettingsChangeOnlyAfterTheAck() throws {
        let server = try Endpoint(.server)
        let client = try Endpoint(.client)
        try exchange(client, server)
        try client.session.submitSettings([Setting(.initialWindowSize, 1 << 20), Setting(.maxFrameSize, 32_768)])
        try deliver(client.session.send(), to: server, chunkSize: nil)
        #expect(client.session.localSetting(.initialWindowSize) == 65_535)
        #expect(server.session.remoteSetting(.initialWindowSize) == 1 << 20)
        try exchange(client, server)
        #expect(client.session.localSetting(.initialWindowSize) == 1 << 20)
        #expect(client.session.localSetting(.maxFrameSize) == 32_768)
        let acks = client.receivedFrames(.settings).filter { $0.flags.contains(.ack) }
        #expect(acks.count == 2)  // one for the empty initial SETTINGS, one for this
        #expect(server.receivedFrames(.settings).last?.payload == .settings([Setting(.initialWindowSize, 1 << 20), Setting(.maxFrameSize, 32_768)]))
    }

    @Test func pushPromiseAcceptedAndRefused() throws {
        let server = try Endpoint(.server)
        var pushed: Int32 = 0
        server.onFieldBlock = { endpoint, streamID, category, _, _ in
            guard category == .request else { return }
            pushed = try endpoint.session.submitPushPromise(streamID: streamID, request("GET", "/style.css"))
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]], body: .bytes([0]))
            try endpoint.session.submitResponse(streamID: pushed, [[":status", "200"]], body: .bytes([9, 9]))
        }
        let client = try Endpoint(.client)
        let id = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        #expect(pushed == 2)
        #expect(client.fieldBlocks[2]?.first?[name: ":path"] == "/style.css")
        #expect(client.fieldBlocks[2]?.last?[name: ":status"] == "200")
        #expect(client.bodies[2] == [9, 9])
        #expect(client.bodies[id] == [0])

        let refusingServer = try Endpoint(.server)
        var refusal: (any Error)?
        refusingServer.onFieldBlock = { endpoint, streamID, category, _, _ in
            guard category == .request else { return }
            do { _ = try endpoint.session.submitPushPromise(streamID: streamID, request("GET", "/x")) } catch { refusal = error }
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]])
        }
        let noPush = try Endpoint(.client, settings: [Setting(.enablePush, 0)])
        let other = try noPush.session.submitRequest(getRequest)
        try exchange(noPush, refusingServer)
        // The server learns ENABLE_PUSH=0 from the client's SETTINGS: the promise is refused, at submit or at send.
        let refusedAtSend = refusingServer.notSent.contains { $0.0.type == .pushPromise && $0.1 == .pushDisabled }
        #expect(refusal as? NGHTTP2Error == .pushDisabled || refusedAtSend)
        #expect(noPush.closed[other] == .noError)
        #expect(noPush.receivedFrames(.pushPromise).isEmpty)
    }

    @Test func h2cUpgrade() throws {
        let settings = [Setting(.maxConcurrentStreams, 100), Setting(.initialWindowSize, 1 << 16)]
        let payload = try Session.settingsPayload(settings)
        #expect(payload.count == 12)
        let client = try Endpoint(.client)
        var serverOptions = Session.Options()
        serverOptions.noRecvClientMagic = false
        let server = try Endpoint(.server, options: serverOptions)
        try client.session.upgrade(settingsPayload: payload, userData: "upgraded")
        try server.session.upgrade(settingsPayload: payload)
        #expect(client.session.streamState(1) == .halfClosedLocal)
        #expect(server.session.streamState(1) == .halfClosedRemote)
        #expect(server.session.remoteSetting(.maxConcurrentStreams) == 100)
        try server.session.submitResponse(streamID: 1, [[":status", "200"]], body: .bytes(Array("upgraded".utf8)))
        try exchange(client, server)
        #expect(client.head(1)[name: ":status"] == "200")
        #expect(client.bodies[1] == Array("upgraded".utf8))
        #expect(client.session.userDataCount == 0)
    }

    @Test func priorityUpdateReachesTheServer() throws {
        var options = Session.Options()
        options.builtinRecvExtensionTypes = [.priorityUpdate]
        let server = try Endpoint(.server, options: options, settings: [Setting(.maxConcurrentStreams, 100), Setting(.noRFC7540Priorities, 1)])
        let client = try Endpoint(.client)
        let id = try client.session.submitRequest(getRequest)
        try client.session.submitPriorityUpdate(streamID: id, fieldValue: "u=1, i")
        try exchange(client, server)
        #expect(server.receivedFrames(.priorityUpdate).first?.payload == .priorityUpdate(prioritizedStreamID: id, fieldValue: "u=1, i"))
        #expect(throws: NGHTTP2Error.invalidState) { try server.session.submitPriorityUpdate(streamID: 1, fieldValue: "u=0") }
    }

    @Test func aServerChangesAnOpenStreamsPriorityAndAClientCannot() throws {
        let server = try Endpoint(.server, settings: [Setting(.maxConcurrentStreams, 100), Setting(.noRFC7540Priorities, 1)])
        let client = try Endpoint(.client)
        let id = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        // Stream 1 is open on the server until it answers (the echo server here never does).
        try server.session.changeStreamPriority(streamID: id, urgency: 0, incremental: true, ignoringClientSignals: true)
        #expect(throws: NGHTTP2Error.invalidArgument) { try server.session.changeStreamPriority(streamID: 99, urgency: 1, incremental: false) }
        #expect(throws: NGHTTP2Error.invalidState) { try client.session.changeStreamPriority(streamID: id, urgency: 1, incremental: false) }
    }

    @Test func altsvcAndOriginFrames() throws {
        let server = try Endpoint(.server)
        var options = Session.Options()
        options.builtinRecvExtensionTypes = [.altsvc, .origin]
        let client = try Endpoint(.client, options: options)
        try exchange(client, server)
        try server.session.submitAltsvc(origin: "https://example.org", fieldValue: "h2=\":8443\"")
        try server.session.submitOrigin(["https://example.org", "https://example.com"])
        try exchange(client, server)
        #expect(client.receivedFrames(.altsvc).first?.payload == .altsvc(origin: "https://example.org", fieldValue: "h2=\":8443\""))
        #expect(client.receivedFrames(.origin).first?.payload == .origin(["https://example.org", "https://example.com"]))
    }

    @Test func anOriginFrameCarriesEveryOriginInOrderAndAnEmptyOneCarriesNone() throws {
        let server = try Endpoint(.server)
        var options = Session.Options()
        options.builtinRecvExtensionTypes = [.origin]
        let client = try Endpoint(.client, options: options)
        try exchange(client, server)
        let origins = [
            "https://a.example", "https://b.example:8443", "http://c", "https://" + String(repeating: "d", count: 1000) + ".example",
            "https://e.example", "https://xn--fiqs8s.example",
        ]
        try server.session.submitOrigin(origins)
        try server.session.submitOrigin([])
        try exchange(client, server)
        #expect(client.receivedFrames(.origin).map(\.payload) == [.origin(origins), .origin([])])
    }

    @Test func zeroCopyData() throws {
        let body = pattern(100_000, seed: 3)
        let server = try Endpoint(.server)
        server.onFieldBlock = { endpoint, streamID, category, _, _ in
            guard category == .request else { return }
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]], body: .zeroCopy(body))
        }
        let client = try Endpoint(.client)
        let id = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        #expect(client.bodies[id] == body)
        #expect(server.sentFrames(.data).count == 7)  // 100,000 bytes in 16 KiB frames
        #expect(client.closed[id] == .noError)
    }

    @Test func callbackErrorsReachTheCallerUnchanged() throws {
        struct Boom: Error, Equatable { let id: Int }
        let server = try Endpoint(.server)
        server.onFieldBlock = { _, _, _, _, _ in throw Boom(id: 42) }
        let client = try Endpoint(.client)
        _ = try client.session.submitRequest(getRequest)
        #expect(throws: Boom(id: 42)) { try exchange(client, server) }

        // A data provider's error reaches send().
        let failing = try Endpoint(.server)
        failing.onFieldBlock = { endpoint, streamID, _, _, _ in
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]], body: DataProvider { _, _ in throw Boom(id: 7) })
        }
        let client2 = try Endpoint(.client)
        _ = try client2.session.submitRequest(getRequest)
        try deliver(client2.session.send(), to: failing, chunkSize: nil)
        #expect(throws: Boom(id: 7)) { try failing.session.send() }
    }

    @Test func streamResetFromACallbackResetsOnlyThatStream() throws {
        let server = try echoServer()
        server.session.callbacks.onHeader = { _, _, field in
            if field.name == "x-reject" { throw Session.StreamReset(.refusedStream) }
        }
        let client = try Endpoint(.client)
        let bad = try client.session.submitRequest(request("GET", "/", [["x-reject", "1"]]))
        let good = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        #expect(client.closed[bad] == .refusedStream)
        #expect(client.bodies[good] == Array("hello".utf8))
    }

    @Test func reentrantDrivingIsRefused() throws {
        let server = try Endpoint(.server)
        var inner: (any Error)?
        server.session.callbacks.onBeginFrame = { [unowned server] _ in
            do { _ = try server.session.send() } catch { inner = error }
        }
        let client = try Endpoint(.client)
        try exchange(client, server)
        #expect(inner as? NGHTTP2Error == .invalidState)
    }

    @Test func oversizedHeaderListGets431() throws {
        let server = try Endpoint(.server, settings: [Setting(.maxConcurrentStreams, 100), Setting(.maxHeaderListSize, 1_024)])
        var requests: [Int32] = []
        server.onFieldBlock = { endpoint, streamID, category, _, _ in
            guard category == .request else { return }
            requests.append(streamID)
            try endpoint.session.submitResponse(streamID: streamID, [[":status", "200"]])
        }
        let client = try Endpoint(.client)
        try exchange(client, server)
        let big = try client.session.submitRequest(request("GET", "/", [["x-big", String(repeating: "a", count: 4_000)]]))
        let small = try client.session.submitRequest(getRequest)
        try exchange(client, server)
        #expect(client.head(big)[name: ":status"] == "431")
        #expect(client.head(small)[name: ":status"] == "200")
        #expect(requests == [small])
    }

    @Test func streamStateAndUserData() throws {
        let server = try Endpoint(.server)
        let client = try Endpoint(.client)
        final class Tag {}
        weak var weakTag: Tag?
        var id: Int32 = 0
        do {
            let tag = Tag()
            weakTag = tag
            id = try client.session.submitRequest(request("POST", "/"), body: DataProvider { _, _ in .deferred }, userData: tag)
        }
        #expect(client.session.userData(streamID: id) is Tag)
        try exchange(client, server)
        #expect(client.session.streamState(id) == .open)
        #expect(server.session.streamState(id) == .open)
        #expect(client.session.isLocallyClosed(streamID: id) == false)
        #expect(client.session.remoteWindowSize(streamID: id) == 65_535)
        #expect(server.session.lastProcessedStreamID == id)
        #expect(client.session.nextStreamID == UInt32(id + 2))
        try client.session.submitRSTStream(streamID: id, errorCode: .cancel)
        try exchange(client, server)
        #expect(client.session.streamState(id) == nil)
        #expect(client.session.userDataCount == 0)
        #expect(weakTag == nil)
        #expect(client.session.activeDataProviderCount == 0)
    }

    @Test func connectionWindowCanGrowBeyondTheDefault() throws {
        let server = try Endpoint(.server)
        let client = try Endpoint(.client)
        try client.session.setLocalWindowSize(1 << 24)
        try exchange(client, server)
        #expect(client.session.effectiveLocalWindowSize == 1 << 24)
        #expect(server.session.remoteWindowSize == 1 << 24)
    }

    @Test func libraryVersion() {
        #expect(LibraryVersion.current.number >= 0x013400)
        #expect(LibraryVersion.current.alpnProtocolID == "h2")
        #expect(LibraryVersion.isAtLeast(major: 1, minor: 52))
        #expect(!LibraryVersion.isAtLeast(major: 99, minor: 0))
    }
}
