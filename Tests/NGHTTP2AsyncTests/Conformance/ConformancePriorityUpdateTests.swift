import Testing
@testable import NGHTTP2Async

/// RFC 9218 §7.1 (the PRIORITY_UPDATE frame) conformance of `ServerSession`, with raw frames as in
/// ``ConformanceServerTests``. The server parses the frame (libnghttp2 1.52 skips it unread otherwise).
@Suite(.timeLimit(.minutes(2)))
struct ConformancePriorityUpdateTests {
    /// RFC 9218 §7.1: a PRIORITY_UPDATE "carries the stream ID of the response and the priority in ASCII text"; a
    /// valid one for an open stream changes nothing else on the connection.
    @Test(arguments: Transport.allCases)
    func section7_1_aValidPriorityUpdateKeepsTheConnection(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(Self.priorityUpdate(on: 0, prioritizing: 1, "u=0, i"))
            try await connection.expectConnectionAlive()
        }
    }

    /// RFC 9218 §7.1: "The PRIORITY_UPDATE frame MUST be sent on stream 0 … If a PRIORITY_UPDATE frame is received with a
    /// stream ID other than 0x0, the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section7_1_aPriorityUpdateOnAStreamOtherThanZeroIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(Self.priorityUpdate(on: 1, prioritizing: 1, "u=0"))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// RFC 9218 §7.1: "If a PRIORITY_UPDATE frame is received with a Prioritized Stream ID of 0x0, the recipient MUST
    /// respond with a connection error of type PROTOCOL_ERROR."
    @Test(arguments: Transport.allCases)
    func section7_1_aPriorityUpdateForStreamZeroIsProtocolError(_ transport: Transport) async throws {
        try await withConformanceServer(transport) { _, connection, _ in
            try await connection.send(Self.priorityUpdate(on: 0, prioritizing: 0, "u=0"))
            await connection.expectConnectionError(.protocolError)
        }
    }

    /// A PRIORITY_UPDATE frame (type 0x10): the prioritized stream ID, then the Priority field value.
    static func priorityUpdate(on stream: UInt32, prioritizing prioritized: UInt32, _ fieldValue: String) -> RawFrame {
        let id = (0..<4).reversed().map { UInt8(truncatingIfNeeded: prioritized >> (8 * UInt32($0))) }
        return RawFrame.unknown(type: 0x10, flags: 0, stream, id + Array(fieldValue.utf8))
    }
}
