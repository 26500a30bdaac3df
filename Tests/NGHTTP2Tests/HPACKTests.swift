import Testing
import NGHTTP2

// MARK: - Helpers

/// Parses hex digits, ignoring spaces and newlines (the layout RFC 7541 Appendix C uses).
private func hex(_ string: String) -> [UInt8] {
    let digits = string.filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// The dynamic table of an encoder, newest entry first.
private func table(_ encoder: HPACK.Encoder) -> [HeaderField] {
    (0..<encoder.dynamicTableCount).map { encoder.dynamicTableEntry(at: $0)! }
}

/// The dynamic table of a decoder, newest entry first.
private func table(_ decoder: HPACK.Decoder) -> [HeaderField] {
    (0..<decoder.dynamicTableCount).map { decoder.dynamicTableEntry(at: $0)! }
}

/// Checks that a decoder mirrors its peer encoder's dynamic table exactly.
private func expectInSync(
    _ encoder: HPACK.Encoder,
    _ decoder: HPACK.Decoder,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(encoder.dynamicTableSize == decoder.dynamicTableSize, sourceLocation: sourceLocation)
    #expect(encoder.maxDynamicTableSize == decoder.maxDynamicTableSize, sourceLocation: sourceLocation)
    #expect(table(encoder) == table(decoder), sourceLocation: sourceLocation)
}

/// The RFC 7541 §4.1 size of a table entry.
private func entrySize(_ field: HeaderField) -> Int {
    field.name.utf8.count + field.value.utf8.count + 32
}

/// A dynamic table size update to 256 as a header block of its own. RFC 7541's Appendix C.5 and C.6
/// assume a decoder whose table is 256 bytes from the start. A real decoder starts at 4,096; once it
/// lowers its limit (setMaxDynamicTableSize(256)), RFC 7541 §4.2 requires the encoder to start its next
/// block with a size update, and libnghttp2 enforces that. So the decoder first gets this block
/// (001 11111, then 256 - 31 = 225 = 0xe1 0x01), and then the RFC's bytes, unchanged.
private let sizeUpdateTo256: [UInt8] = [0x3f, 0xe1, 0x01]

// MARK: - Round trips

@Suite struct HPACKRoundTripTests {
    static let firstRequest: [HeaderField] = [
        [":method", "GET"],
        [":scheme", "https"],
        [":authority", "www.example.com"],
        [":path", "/index.html"],
        ["user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"],
        ["accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
        ["accept-language", "en-US,en;q=0.5"],
        ["accept-encoding", "gzip, deflate, br, zstd"],
        ["cookie", "_ga=GA1.2.1234567890.1700000000"],
        ["cookie", "theme=dark"],
    ]

    static let secondRequest: [HeaderField] = [
        [":method", "GET"],
        [":scheme", "https"],
        [":authority", "www.example.com"],
        [":path", "/static/app.js"],
        ["user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"],
        ["accept", "*/*"],
        ["accept-language", "en-US,en;q=0.5"],
        ["accept-encoding", "gzip, deflate, br, zstd"],
        ["referer", "https://www.example.com/index.html"],
        ["cookie", "_ga=GA1.2.1234567890.1700000000"],
        ["cookie", "theme=dark"],
    ]

    /// libnghttp2 sends a `cookie` shorter than 20 bytes as "never indexed", so it comes back flagged.
    static func received(_ fields: [HeaderField]) -> [HeaderField] {
        fields.map { field in
            var field = field
            if field.name == "cookie" && field.value.utf8.count < 20 { field.flags = .noIndex }
            return field
        }
    }

    @Test func requestsRoundTripAndReuseTheDynamicTable() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()

        let first = try encoder.encode(Self.firstRequest)
        #expect(try decoder.decode(first) == Self.received(Self.firstRequest))
        expectInSync(encoder, decoder)
        // :authority, user-agent, accept, accept-language, accept-encoding and the long cookie.
        #expect(encoder.dynamicTableCount == 6)

        let second = try encoder.encode(Self.secondRequest)
        #expect(try decoder.decode(second) == Self.received(Self.secondRequest))
        expectInSync(encoder, decoder)
        #expect(second.count < first.count)
        // The table is what made it small: a fresh encoder needs far more bytes for the same request.
        #expect(second.count < (try HPACK.Encoder().encode(Self.secondRequest).count) / 2)

        // The same request again: every field is one byte (an indexed field), except :path (never
        // indexed by libnghttp2) and the short cookie (never indexed), which are literals again.
        let third = try encoder.encode(Self.secondRequest)
        #expect(try decoder.decode(third) == Self.received(Self.secondRequest))
        let path = try HPACK.Encoder().encode([[":path", "/static/app.js"]])
        let cookie = try HPACK.Encoder().encode([["cookie", "theme=dark"]])
        #expect(third.count == Self.secondRequest.count - 2 + path.count + cookie.count)
        expectInSync(encoder, decoder)
    }

    @Test func responsesRoundTripAndReuseTheDynamicTable() throws {
        let firstResponse: [HeaderField] = [
            [":status", "200"],
            ["content-type", "text/html; charset=utf-8"],
            ["content-length", "10384"],
            ["date", "Sat, 22 Nov 2025 10:00:00 GMT"],
            ["server", "nghttpx"],
            ["cache-control", "max-age=3600, public"],
            ["strict-transport-security", "max-age=63072000; includeSubDomains"],
            ["set-cookie", "session=8f14e45fceea167a5a36dedd4bea2543; Path=/; Secure; HttpOnly"],
            ["etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\""],
            ["x-request-id", "7d3a-11ee-be56-0242ac120002"],
        ]
        let secondResponse: [HeaderField] = [
            [":status", "200"],
            ["content-type", "text/html; charset=utf-8"],
            ["content-length", "2048"],
            ["date", "Sat, 22 Nov 2025 10:00:01 GMT"],
            ["server", "nghttpx"],
            ["cache-control", "max-age=3600, public"],
            ["strict-transport-security", "max-age=63072000; includeSubDomains"],
            ["x-request-id", "7d3a-11ee-be56-0242ac120003"],
        ]
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()

        let first = try encoder.encode(firstResponse)
        #expect(try decoder.decode(first) == firstResponse)
        expectInSync(encoder, decoder)

        let second = try encoder.encode(secondResponse)
        #expect(try decoder.decode(second) == secondResponse)
        expectInSync(encoder, decoder)
        #expect(second.count < first.count)
    }

    @Test func emptyHeaderListIsAnEmptyBlock() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        let block = try encoder.encode([])
        #expect(block == [])
        #expect(try decoder.decode(block) == [])
        #expect(try decoder.decode(UnsafeRawBufferPointer(start: nil, count: 0)) == [])
        #expect(decoder.dynamicTableCount == 0)
        // The decoder is still in a good state: a real block decodes.
        #expect(try decoder.decode([0x82]) == [[":method", "GET"]])
    }

    @Test func encodeIntoAppendsTheSameBytes() throws {
        let fields: [HeaderField] = [[":method", "POST"], [":path", "/upload"], ["content-type", "application/json"]]
        let reference = try HPACK.Encoder().encode(fields)

        var buffer: [UInt8] = [0xde, 0xad, 0xbe, 0xef]
        try HPACK.Encoder().encode(fields, into: &buffer)
        #expect(Array(buffer.prefix(4)) == [0xde, 0xad, 0xbe, 0xef])
        #expect(Array(buffer.dropFirst(4)) == reference)

        let decoder = try HPACK.Decoder()
        let decoded = try buffer.dropFirst(4).withUnsafeBytes { bytes in try decoder.decode(bytes) }
        #expect(decoded == fields)
    }

    @Test func libnghttp2IndexingPolicy() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        // Never indexed by libnghttp2 (literal without indexing): not added to the table.
        let unindexed: [HeaderField] = [
            [":path", "/a/long/path/that/would/otherwise/be/indexed"],
            ["content-length", "123456"],
            ["set-cookie", "id=a3fWa; Expires=Thu, 31 Oct 2021 07:28:00 GMT"],
            ["etag", "\"abc123\""],
            ["location", "https://example.com/elsewhere"],
            ["age", "42"],
            ["if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT"],
            ["if-none-match", "\"abc123\""],
        ]
        #expect(try decoder.decode(try encoder.encode(unindexed)) == unindexed)
        #expect(encoder.dynamicTableCount == 0)
        expectInSync(encoder, decoder)

        // Sent as never indexed although not flagged: authorization, and a cookie shorter than 20 bytes.
        let secrets: [HeaderField] = [
            ["authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo"],
            ["cookie", "sid=31d4d96e407aad4"],
        ]
        let block = try encoder.encode(secrets)
        #expect(block.first == 0x1f)  // 0001 1111: never indexed, name index ≥ 15 (authorization is 23)
        #expect(try decoder.decode(block) == secrets.map { HeaderField($0.name, $0.value, flags: .noIndex) })
        #expect(encoder.dynamicTableCount == 0)

        // A cookie of 20 bytes or more is indexed.
        let cookie: [HeaderField] = [["cookie", "sid=31d4d96e407aad42"]]
        #expect(try decoder.decode(try encoder.encode(cookie)) == cookie)
        #expect(encoder.dynamicTableEntry(at: 0) == cookie[0])
        expectInSync(encoder, decoder)

        // A field larger than ¾ of the table (3,072 of 4,096 bytes) is not indexed.
        let large: [HeaderField] = [["x-large", String(repeating: "l", count: 3040)]]
        #expect(entrySize(large[0]) > 3072)
        #expect(try decoder.decode(try encoder.encode(large)) == large)
        #expect(table(encoder) == cookie)
        let justFits: [HeaderField] = [["x-large", String(repeating: "l", count: 3030)]]
        #expect(entrySize(justFits[0]) <= 3072)
        #expect(try decoder.decode(try encoder.encode(justFits)) == justFits)
        #expect(table(encoder) == justFits + cookie)
        expectInSync(encoder, decoder)
    }

    @Test func randomizedRoundTripsKeepTablesInSync() throws {
        var random = SplitMix64(seed: 0x5EED_4BAC)
        let names = ["x-a", "x-b", "x-trace-id", "accept", "user-agent", "content-type", ":authority", "via"]
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        for round in 0..<300 {
            if round % 37 == 36 {
                let size = [0, 64, 128, 256, 1024, 4096][Int.random(in: 0..<6, using: &random)]
                try decoder.setMaxDynamicTableSize(size)
                try encoder.setDynamicTableSize(size)
            }
            var fields: [HeaderField] = []
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                let name = names[Int.random(in: 0..<names.count, using: &random)]
                let value = "v\(Int.random(in: 0..<12, using: &random))"
                    + String(repeating: "z", count: Int.random(in: 0..<40, using: &random))
                fields.append(HeaderField(name, value, flags: Int.random(in: 0..<8, using: &random) == 0 ? .noIndex : []))
            }
            let block = try encoder.encode(fields)
            #expect(try decoder.decode(block) == fields, "round \(round)")
            expectInSync(encoder, decoder)
            #expect(encoder.dynamicTableSize <= encoder.maxDynamicTableSize)
        }
    }
}

// MARK: - Dynamic table management

@Suite struct HPACKDynamicTableTests {
    @Test func smallTableEvictsOldestEntries() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        try decoder.setMaxDynamicTableSize(100)
        try encoder.setDynamicTableSize(100)
        #expect(encoder.maxDynamicTableSize == 100)
        #expect(decoder.maxDynamicTableSize == 100)

        // Two 36-byte entries fit.
        let small: [HeaderField] = [["x-a", "1"], ["x-b", "2"]]
        let first = try encoder.encode(small)
        #expect(Array(first.prefix(2)) == [0x3f, 0x45])  // size update to 100 = 31 + 69
        #expect(try decoder.decode(first) == small)
        #expect(encoder.dynamicTableCount == 2)
        #expect(encoder.dynamicTableSize == 72)
        expectInSync(encoder, decoder)

        // A 71-byte entry (under ¾ of the table, so still indexed) evicts both: the count goes down.
        let big: [HeaderField] = [["x-c", String(repeating: "c", count: 36)]]
        #expect(entrySize(big[0]) == 71)
        #expect(try decoder.decode(try encoder.encode(big)) == big)
        #expect(encoder.dynamicTableCount == 1)
        #expect(encoder.dynamicTableSize == 71)
        #expect(encoder.dynamicTableEntry(at: 0) == big[0])
        expectInSync(encoder, decoder)

        // Many distinct fields: the table never exceeds 100 bytes and only the newest entries remain.
        var sent: [HeaderField] = []
        for index in 0..<50 {
            let fields: [HeaderField] = [HeaderField("x-key-\(index)", "value-\(index)")]
            sent += fields
            #expect(try decoder.decode(try encoder.encode(fields)) == fields)
            #expect(encoder.dynamicTableSize <= 100)
            #expect(decoder.dynamicTableSize <= 100)
            #expect(encoder.dynamicTableEntry(at: 0) == fields[0])
            expectInSync(encoder, decoder)
        }
        let remaining = table(encoder)
        #expect(remaining == Array(sent.suffix(remaining.count).reversed()))
        #expect(remaining.count == 2)
        #expect(!remaining.contains(HeaderField("x-key-0", "value-0")))
        #expect(!remaining.contains(big[0]))

        // Blocks mixing old (evicted) and new fields still decode correctly.
        let mixed: [HeaderField] = [["x-key-0", "value-0"], ["x-key-49", "value-49"], ["x-a", "1"]]
        #expect(try decoder.decode(try encoder.encode(mixed)) == mixed)
        expectInSync(encoder, decoder)
    }

    @Test func tableSizeChangeToZeroAndBack() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        let fields: [HeaderField] = [
            [":method", "GET"], [":authority", "example.org"], ["user-agent", "curl/8.5.0"], ["accept", "*/*"],
        ]
        #expect(try decoder.decode(try encoder.encode(fields)) == fields)
        #expect(encoder.dynamicTableCount == 3)

        // Down to 0: the table empties, and the next block starts with an update to 0 (001 00000).
        try decoder.setMaxDynamicTableSize(0)
        try encoder.setDynamicTableSize(0)
        #expect(encoder.dynamicTableCount == 0)
        #expect(decoder.dynamicTableCount == 0)
        let zero = try encoder.encode(fields)
        #expect(zero.first! & 0xe0 == 0x20)
        #expect(zero.first == 0x20)
        #expect(try decoder.decode(zero) == fields)
        #expect(encoder.dynamicTableCount == 0)
        expectInSync(encoder, decoder)

        // Back to 4,096: the next block starts with an update to 4,096 (0x3f, then 4065 = 0xe1 0x1f).
        try decoder.setMaxDynamicTableSize(4096)
        try encoder.setDynamicTableSize(4096)
        let back = try encoder.encode(fields)
        #expect(back.first! & 0xe0 == 0x20)
        #expect(Array(back.prefix(3)) == [0x3f, 0xe1, 0x1f])
        #expect(try decoder.decode(back) == fields)
        #expect(encoder.dynamicTableCount == 3)
        expectInSync(encoder, decoder)

        // Down to 0 and back up before any block: two updates, smallest first (RFC 7541 §4.2).
        try decoder.setMaxDynamicTableSize(0)
        try decoder.setMaxDynamicTableSize(4096)
        try encoder.setDynamicTableSize(0)
        try encoder.setDynamicTableSize(4096)
        let both = try encoder.encode(fields)
        #expect(Array(both.prefix(4)) == [0x20, 0x3f, 0xe1, 0x1f])
        #expect(try decoder.decode(both) == fields)
        #expect(encoder.dynamicTableCount == 3)
        expectInSync(encoder, decoder)
    }

    @Test func encoderBoundAndPeerSetting() throws {
        // A bound below 4,096 applies at once, and the first block announces it.
        let small = try HPACK.Encoder(maxDynamicTableSize: 100)
        #expect(small.maxDynamicTableSize == 100)
        #expect(Array(try small.encode([["x-a", "1"]]).prefix(2)) == [0x3f, 0x45])

        // A bound above 4,096 waits for the peer's setting; the setting is capped by the bound.
        let large = try HPACK.Encoder(maxDynamicTableSize: 8192)
        #expect(large.maxDynamicTableSize == 4096)
        #expect(try large.encode([["x-a", "1"]]).first == 0x40)  // no size update
        try large.setDynamicTableSize(65536)
        #expect(large.maxDynamicTableSize == 8192)
        #expect(Array(try large.encode([["x-a", "1"]]).prefix(3)) == [0x3f, 0xe1, 0x3f])  // 8192 = 31 + 8161

        let decoder = try HPACK.Decoder()
        #expect(decoder.maxDynamicTableSize == 4096)
        #expect(decoder.dynamicTableSize == 0)
        #expect(decoder.dynamicTableCount == 0)
    }

    @Test func negativeSizesAreRejected() throws {
        #expect(throws: NGHTTP2Error.invalidArgument) { try HPACK.Encoder(maxDynamicTableSize: -1) }
        let encoder = try HPACK.Encoder()
        #expect(throws: NGHTTP2Error.invalidArgument) { try encoder.setDynamicTableSize(-1) }
        let decoder = try HPACK.Decoder()
        #expect(throws: NGHTTP2Error.invalidArgument) { try decoder.setMaxDynamicTableSize(-4096) }
        #expect(encoder.maxDynamicTableSize == 4096)
        #expect(decoder.maxDynamicTableSize == 4096)
    }

    @Test func tableEntriesOutOfRangeAreNil() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        #expect(encoder.dynamicTableEntry(at: 0) == nil)
        #expect(decoder.dynamicTableEntry(at: 0) == nil)
        let fields: [HeaderField] = [["x-first", "1"], ["x-second", "2"]]
        _ = try decoder.decode(try encoder.encode(fields))
        for side in [table(encoder), table(decoder)] {
            #expect(side == [fields[1], fields[0]])
        }
        #expect(encoder.dynamicTableEntry(at: -1) == nil)
        #expect(encoder.dynamicTableEntry(at: 2) == nil)
        #expect(decoder.dynamicTableEntry(at: -1) == nil)
        #expect(decoder.dynamicTableEntry(at: 2) == nil)
        #expect(decoder.dynamicTableEntry(at: Int.max) == nil)
    }

    @Test func neverIndexedFields() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        // A new name: 0001 0000, then the name and value literals.
        let secret: [HeaderField] = [HeaderField("x-api-key", "3c6e0b8a9c15224a8228b9a98ca1531d", flags: .noIndex)]
        let first = try encoder.encode(secret)
        #expect(first.first == 0x10)
        #expect(try decoder.decode(first) == secret)
        #expect(encoder.dynamicTableCount == 0)
        #expect(decoder.dynamicTableCount == 0)

        // Sending it again gives the same bytes: nothing was indexed.
        let again = try encoder.encode(secret)
        #expect(again == first)
        #expect(try decoder.decode(again) == secret)

        // A static-table name (www-authenticate is 61 = 15 + 46): 0001 1111, then 46.
        let challenge: [HeaderField] = [HeaderField("www-authenticate", "Basic realm=\"staging\"", flags: .noIndex)]
        let second = try encoder.encode(challenge)
        #expect(second[0] & 0xf0 == 0x10)
        #expect(Array(second.prefix(2)) == [0x1f, 0x2e])
        #expect(try decoder.decode(second) == challenge)
        #expect(encoder.dynamicTableCount == 0)
        #expect(decoder.dynamicTableCount == 0)

        // Mixed with indexed fields, only the flagged one stays out of the table and keeps its flag.
        let mixed: [HeaderField] = [["x-visible", "yes"], HeaderField("x-api-key", "another", flags: .noIndex)]
        #expect(try decoder.decode(try encoder.encode(mixed)) == mixed)
        #expect(table(encoder) == [mixed[0]])
        expectInSync(encoder, decoder)
    }
}

// MARK: - RFC 7541 Appendix C

@Suite struct HPACKRFC7541ExampleTests {
    static let date1 = "Mon, 21 Oct 2013 20:13:21 GMT"
    static let date2 = "Mon, 21 Oct 2013 20:13:22 GMT"
    static let setCookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"

    // C.3 / C.4: the same three requests.
    static let request1: [HeaderField] = [
        [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
    ]
    static let request2: [HeaderField] = [
        [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
        ["cache-control", "no-cache"],
    ]
    static let request3: [HeaderField] = [
        [":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"],
        ["custom-key", "custom-value"],
    ]
    // The dynamic table after each request, newest first, and its size.
    static let requestTables: [([HeaderField], Int)] = [
        ([[":authority", "www.example.com"]], 57),
        ([["cache-control", "no-cache"], [":authority", "www.example.com"]], 110),
        ([["custom-key", "custom-value"], ["cache-control", "no-cache"], [":authority", "www.example.com"]], 164),
    ]

    // C.5 / C.6: the same three responses, with a 256-byte table.
    static let response1: [HeaderField] = [
        [":status", "302"], ["cache-control", "private"], ["date", date1], ["location", "https://www.example.com"],
    ]
    static let response2: [HeaderField] = [
        [":status", "307"], ["cache-control", "private"], ["date", date1], ["location", "https://www.example.com"],
    ]
    static let response3: [HeaderField] = [
        [":status", "200"], ["cache-control", "private"], ["date", date2], ["location", "https://www.example.com"],
        ["content-encoding", "gzip"], ["set-cookie", setCookie],
    ]
    static let responseTables: [([HeaderField], Int)] = [
        ([["location", "https://www.example.com"], ["date", date1], ["cache-control", "private"], [":status", "302"]], 222),
        ([[":status", "307"], ["location", "https://www.example.com"], ["date", date1], ["cache-control", "private"]], 222),
        ([["set-cookie", setCookie], ["content-encoding", "gzip"], ["date", date2]], 215),
    ]

    /// C.2.1–C.2.4: one representation each, on a fresh decoder.
    @Test func c2HeaderFieldRepresentations() throws {
        // C.2.1 Literal header field with indexing.
        var decoder = try HPACK.Decoder()
        #expect(try decoder.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))
            == [["custom-key", "custom-header"]])
        #expect(table(decoder) == [["custom-key", "custom-header"]])
        #expect(decoder.dynamicTableSize == 55)

        // C.2.2 Literal header field without indexing.
        decoder = try HPACK.Decoder()
        #expect(try decoder.decode(hex("040c 2f73 616d 706c 652f 7061 7468")) == [[":path", "/sample/path"]])
        #expect(decoder.dynamicTableCount == 0)

        // C.2.3 Literal header field never indexed.
        decoder = try HPACK.Decoder()
        #expect(try decoder.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))
            == [HeaderField("password", "secret", flags: .noIndex)])
        #expect(decoder.dynamicTableCount == 0)

        // C.2.4 Indexed header field.
        decoder = try HPACK.Decoder()
        #expect(try decoder.decode(hex("82")) == [[":method", "GET"]])
        #expect(decoder.dynamicTableCount == 0)
    }

    /// C.3: requests without Huffman coding. Decode only: libnghttp2's encoder Huffman-codes every
    /// string that gets shorter, so it never produces these bytes.
    @Test func c3RequestsWithoutHuffman() throws {
        let decoder = try HPACK.Decoder()
        let blocks = [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]
        let requests = [Self.request1, Self.request2, Self.request3]
        for index in 0..<3 {
            #expect(try decoder.decode(hex(blocks[index])) == requests[index], "C.3.\(index + 1)")
            #expect(table(decoder) == Self.requestTables[index].0, "C.3.\(index + 1)")
            #expect(decoder.dynamicTableSize == Self.requestTables[index].1, "C.3.\(index + 1)")
        }
    }

    /// C.4: requests with Huffman coding. libnghttp2's encoder produces exactly the RFC's bytes.
    @Test func c4RequestsWithHuffman() throws {
        let encoder = try HPACK.Encoder()
        let decoder = try HPACK.Decoder()
        let blocks = [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]
        let requests = [Self.request1, Self.request2, Self.request3]
        for index in 0..<3 {
            let expected = hex(blocks[index])
            #expect(try encoder.encode(requests[index]) == expected, "C.4.\(index + 1)")
            #expect(table(encoder) == Self.requestTables[index].0, "C.4.\(index + 1)")
            #expect(encoder.dynamicTableSize == Self.requestTables[index].1, "C.4.\(index + 1)")

            #expect(try decoder.decode(expected) == requests[index], "C.4.\(index + 1)")
            #expect(table(decoder) == Self.requestTables[index].0, "C.4.\(index + 1)")
            #expect(decoder.dynamicTableSize == Self.requestTables[index].1, "C.4.\(index + 1)")
        }
    }

    /// C.5: responses without Huffman coding, 256-byte table. Decode only (libnghttp2 would Huffman-code).
    @Test func c5ResponsesWithoutHuffman() throws {
        let decoder = try HPACK.Decoder()
        try decoder.setMaxDynamicTableSize(256)
        #expect(try decoder.decode(sizeUpdateTo256) == [])
        #expect(decoder.maxDynamicTableSize == 256)
        let blocks = [
            """
            4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133
            3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d
            """,
            "4803 3330 37c1 c0bf",
            """
            88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a
            6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d
            6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31
            """,
        ]
        let responses = [Self.response1, Self.response2, Self.response3]
        for index in 0..<3 {
            #expect(try decoder.decode(hex(blocks[index])) == responses[index], "C.5.\(index + 1)")
            #expect(table(decoder) == Self.responseTables[index].0, "C.5.\(index + 1)")
            #expect(decoder.dynamicTableSize == Self.responseTables[index].1, "C.5.\(index + 1)")
        }
    }

    /// C.6: responses with Huffman coding, 256-byte table. Decode only: libnghttp2's encoder starts with
    /// a size update and never indexes `location` or `set-cookie`, so its bytes differ from the RFC's.
    @Test func c6ResponsesWithHuffman() throws {
        let decoder = try HPACK.Decoder()
        try decoder.setMaxDynamicTableSize(256)
        #expect(try decoder.decode(sizeUpdateTo256) == [])
        let blocks = [
            """
            4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d
            29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3
            """,
            "4883 640e ffc1 c0bf",
            """
            88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d
            d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106
            3d50 07
            """,
        ]
        let responses = [Self.response1, Self.response2, Self.response3]
        for index in 0..<3 {
            #expect(try decoder.decode(hex(blocks[index])) == responses[index], "C.6.\(index + 1)")
            #expect(table(decoder) == Self.responseTables[index].0, "C.6.\(index + 1)")
            #expect(decoder.dynamicTableSize == Self.responseTables[index].1, "C.6.\(index + 1)")
        }
    }

    /// What libnghttp2's encoder does with the C.6 responses: a round trip that stays in sync, but not
    /// the RFC's bytes. The first block starts with a size update to 256, and `location` and
    /// `set-cookie` are sent as literals without indexing (libnghttp2 never indexes them).
    @Test func c6ResponsesRoundTripThroughLibnghttp2() throws {
        let encoder = try HPACK.Encoder(maxDynamicTableSize: 256)
        let decoder = try HPACK.Decoder()
        try decoder.setMaxDynamicTableSize(256)
        for (index, response) in [Self.response1, Self.response2, Self.response3].enumerated() {
            let block = try encoder.encode(response)
            if index == 0 { #expect(Array(block.prefix(3)) == sizeUpdateTo256) }
            #expect(try decoder.decode(block) == response, "C.6.\(index + 1)")
            expectInSync(encoder, decoder)
            #expect(!table(encoder).contains { $0.name == "location" || $0.name == "set-cookie" })
        }
    }
}

// MARK: - Malformed input

@Suite struct HPACKMalformedInputTests {
    static let c41 = hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")
    static let c61 = hex(
        """
        4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d
        29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3
        """
    )

    @Test func truncatedBlocksThrow() throws {
        // Cut inside a representation: after the literal's name index, inside the value's length, inside
        // the Huffman-coded value.
        for length in [4, 5, 10, Self.c41.count - 1] {
            #expect(throws: NGHTTP2Error.headerCompression, "C.4.1 cut at \(length)") {
                try HPACK.Decoder().decode(Array(Self.c41.prefix(length)))
            }
        }
        // Every prefix either is a complete block of the leading fields, or throws. The complete ones are
        // exactly the cuts between representations. C.4.1 is 82 | 86 | 84 | 41 8c…; C.6.1 is
        // 48 82 6402 | 58 85 aec3771a4b | 61 96 d07a…(22 bytes) | 6e 91 9d29…
        for (name, block, fields, boundaries) in [
            ("C.4.1", Self.c41, HPACKRFC7541ExampleTests.request1, [0, 1, 2, 3]),
            ("C.6.1", Self.c61, HPACKRFC7541ExampleTests.response1, [0, 4, 11, 35]),
        ] {
            var complete: [Int] = []
            for length in 0..<block.count {
                do {
                    let decoded = try HPACK.Decoder().decode(Array(block.prefix(length)))
                    #expect(decoded == Array(fields.prefix(complete.count)), "\(name) cut at \(length)")
                    complete.append(length)
                } catch {
                    #expect(error == .headerCompression, "\(name) cut at \(length)")
                }
            }
            #expect(complete == boundaries, "\(name)")
        }
    }

    @Test func invalidIndicesThrow() throws {
        // An index far beyond any table (an integer with four continuation bytes).
        #expect(throws: NGHTTP2Error.headerCompression) { try HPACK.Decoder().decode([0xff, 0xff, 0xff, 0xff, 0x0f]) }
        // Index 0 is not valid (RFC 7541 §6.1).
        #expect(throws: NGHTTP2Error.headerCompression) { try HPACK.Decoder().decode([0x80]) }
        // Index 62 with an empty dynamic table, as a field and as a literal's name.
        #expect(throws: NGHTTP2Error.headerCompression) { try HPACK.Decoder().decode([0xbe]) }
        #expect(throws: NGHTTP2Error.headerCompression) { try HPACK.Decoder().decode([0x7e, 0x01, 0x61]) }
        // The static table alone ends at 61.
        #expect(try HPACK.Decoder().decode([0xbd]) == [["www-authenticate", ""]])
    }

    @Test func invalidTableSizeUpdatesThrow() throws {
        // A size update after the first field (RFC 7541 §4.2: only at the start of a block).
        #expect(throws: NGHTTP2Error.headerCompression) { try HPACK.Decoder().decode([0x82, 0x20]) }
        // A size above the advertised 4,096 (4097 = 31 + 4066 = 0xe2 0x1f).
        #expect(throws: NGHTTP2Error.headerCompression) { try HPACK.Decoder().decode([0x3f, 0xe2, 0x1f]) }
        #expect(try HPACK.Decoder().decode([0x3f, 0xe1, 0x1f]) == [])
        // After we lower the limit, a block without a size update.
        let decoder = try HPACK.Decoder()
        try decoder.setMaxDynamicTableSize(256)
        #expect(throws: NGHTTP2Error.headerCompression) { try decoder.decode([0x82]) }
    }

    @Test func invalidHuffmanThrows() throws {
        // Control: a Huffman-coded name of one byte 0x1f is "a" (00011) plus 3 bits of padding.
        #expect(try HPACK.Decoder().decode([0x40, 0x81, 0x1f, 0x01, 0x61]) == [["a", "a"]])
        // One byte 0xff: eight 1 bits is padding longer than 7 bits (RFC 7541 §5.2).
        #expect(throws: NGHTTP2Error.headerCompression) {
            try HPACK.Decoder().decode([0x40, 0x81, 0xff, 0x01, 0x61])
        }
        // Four bytes 0xff: contains the 30-bit EOS code, which must not appear (§5.2).
        #expect(throws: NGHTTP2Error.headerCompression) {
            try HPACK.Decoder().decode([0x40, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, 0x61])
        }
        // A string length beyond the end of the block.
        #expect(throws: NGHTTP2Error.headerCompression) { try HPACK.Decoder().decode([0x40, 0x05, 0x61, 0x01, 0x62]) }
    }

    @Test func decoderIsUnusableAfterAnError() throws {
        let decoder = try HPACK.Decoder()
        #expect(throws: NGHTTP2Error.headerCompression) { try decoder.decode([0xbe]) }
        #expect(throws: NGHTTP2Error.headerCompression) { try decoder.decode([0x82]) }
        #expect(try HPACK.Decoder().decode([0x82]) == [[":method", "GET"]])
    }

    @Test func randomBytesNeverCrashTheDecoder() throws {
        var random = SplitMix64(seed: 0xC0FF_EE00_D15E_A5E5)
        let valid = [Self.c41, Self.c61, Self.c41 + Self.c61]
        var decoded = 0
        var failed = 0
        for round in 0..<2000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                // Random bytes.
                bytes = (0..<Int.random(in: 0..<48, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                // A valid block with a few bytes changed.
                bytes = valid[Int.random(in: 0..<valid.count, using: &random)]
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            let decoder = try HPACK.Decoder()
            do {
                _ = try decoder.decode(bytes)
                decoded += 1
                #expect(decoder.dynamicTableSize <= decoder.maxDynamicTableSize)
            } catch {
                failed += 1
                #expect(error == .headerCompression || error == .bufferError, "round \(round): \(error)")
            }
        }
        #expect(decoded + failed == 2000)
        #expect(decoded > 0)
        #expect(failed > 0)
    }
}
