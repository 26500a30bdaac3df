import Testing
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// A connection's received heads become `HTTPFields` with the conversions of the head before reused: the result is
/// always what converting from scratch gives.
@Suite struct ReceivedFieldsConverterTests {
    let first: [HeaderField] = [[":status", "200"], ["server", "nghttpd"], ["content-length", "6"], ["etag", "\"a\""]]

    @Test func aHeadIsConvertedAsFromScratchWithPseudoHeaderFieldsLeftOut() {
        var converter = ReceivedFieldsConverter()
        let fields = converter.httpFields(first)
        #expect(fields == HTTPFields(http2Fields: first))
        #expect(fields.map(\.name.canonicalName) == ["server", "content-length", "etag"])
    }

    @Test func aRepeatedHeadGivesTheSameFieldsAndAChangedFieldItsNewValue() {
        var converter = ReceivedFieldsConverter()
        _ = converter.httpFields(first)
        #expect(converter.httpFields(first) == HTTPFields(http2Fields: first))
        var changed = first
        changed[2] = ["content-length", "1234"]
        let fields = converter.httpFields(changed)
        #expect(fields == HTTPFields(http2Fields: changed))
        #expect(fields[.contentLength] == "1234")
    }

    @Test func headsOfOtherLengthsAndOrdersAreConvertedAsFromScratch() {
        var converter = ReceivedFieldsConverter()
        let blocks: [[HeaderField]] = [
            first,
            Array(first.prefix(2)),
            first + [["x-extra", "1"]],
            [first[0], first[3], first[1]],
            [[":status", "204"]],
            first,
            [[":status", "200"], ["secret", "s"], ["server", "nghttpd"]].map { field in
                field.name == "secret" ? HeaderField(field.name, field.value, flags: .noIndex) : field
            },
        ]
        for block in blocks {
            let fields = converter.httpFields(block)
            #expect(fields == HTTPFields(http2Fields: block))
            #expect(fields.map(\.indexingStrategy) == HTTPFields(http2Fields: block).map(\.indexingStrategy))
        }
    }

    @Test func aNeverIndexedFieldIsNotReusedForTheSameFieldSentIndexable() {
        var converter = ReceivedFieldsConverter()
        let secret: [HeaderField] = [[":status", "200"], HeaderField("authorization", "x", flags: .noIndex)]
        #expect(converter.httpFields(secret).first?.indexingStrategy == .disallow)
        let plain: [HeaderField] = [[":status", "200"], ["authorization", "x"]]
        #expect(converter.httpFields(plain).first?.indexingStrategy != .disallow)
    }

    @Test func aRequestWithTheLastRequestsPseudoHeaderFieldsGetsItsOwnHeaderFields() throws {
        var converter = ReceivedFieldsConverter()
        let get: [HeaderField] = [[":method", "GET"], [":scheme", "http"], [":authority", "a"], [":path", "/x"], ["accept", "*/*"]]
        let first = try HTTPRequest(http2Fields: get, converter: &converter)
        #expect(first == (try HTTPRequest(http2Fields: get)))
        let withOtherHeaders = Array(get.prefix(4)) + [["accept", "text/html"], ["x-id", "2"]]
        let second = try HTTPRequest(http2Fields: withOtherHeaders, converter: &converter)
        #expect(second == (try HTTPRequest(http2Fields: withOtherHeaders)))
        #expect(second.headerFields[.accept] == "text/html")
        var post = withOtherHeaders
        post[0] = [":method", "POST"]
        post[3] = [":path", "/y"]
        let third = try HTTPRequest(http2Fields: post, converter: &converter)
        #expect(third.method == .post && third.path == "/y")
        #expect(throws: HTTP2Error.self) { try HTTPRequest(http2Fields: [[":method", "bad method"], [":path", "/"]], converter: &converter) }
    }
}
