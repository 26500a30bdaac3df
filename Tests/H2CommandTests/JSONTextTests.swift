import Testing
import Foundation
@testable import H2Command

/// `h2 serve`'s JSON writer gives what `JSONSerialization` gives with `.prettyPrinted`, `.sortedKeys` and
/// `.withoutEscapingSlashes`, for the values it builds and for what `JSONSerialization` parsed from a body.
@Suite struct JSONTextTests {
    private func expectSameAsJSONSerialization(_ object: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        #expect(String(decoding: JSONText.data(object), as: UTF8.self) == String(decoding: expected, as: UTF8.self), sourceLocation: sourceLocation)
    }

    @Test func theRequestDescriptionIsWrittenAsJSONSerializationWritesIt() throws {
        try expectSameAsJSONSerialization([
            "method": "GET",
            "url": "http://127.0.0.1/get?x=a%22b",
            "args": ["x": "a\"b", "y": "1", "path": "/a/b"] as [String: String],
            "headers": ["x-test": "\"quoted\" \\ back\ttab\nline\u{1}", "accept": "*/*", "accept-encoding": "gzip", "x-b3-traceid": "1"] as [String: String],
            "query": ["é": "ü", "a10": "", "a9": "", "B": "", "a": "", "a_b": "", "a-b": "", "Z": ""] as [String: String],
            "empty": [String: String](),
            "data": "",
            "json": NSNull(),
        ])
    }

    @Test func keysSortAsSortedKeysSortsThem() throws {
        let keys = ["é", "e", "f", "a10", "a9", "a2b", "B", "b", "a", "a_b", "a-b", "ab", "Z", "x-forwarded-for", "x", "x-a", "1", "10", "2"]
        for first in keys {
            for second in keys where first != second {
                try expectSameAsJSONSerialization([first: 1, second: 2])
            }
        }
    }

    @Test func aParsedBodyIsWrittenAsJSONSerializationWritesIt() throws {
        let body = try JSONSerialization.jsonObject(with: Data(#"{"a":[1,2.5,{"b":null,"c":true}],"d":"e/f","g":{}}"#.utf8))
        try expectSameAsJSONSerialization(["json": body, "bytes": 42, "flag": true])
    }
}
