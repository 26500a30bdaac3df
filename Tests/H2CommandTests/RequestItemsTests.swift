import Testing
import HTTPTypes
import Foundation
@testable import H2Command

@Suite struct RequestItemsTests {
    @Test func everyItemKind() throws {
        let items = try RequestItems(parsing: ["X-API-Key:abc", "page==2", "name=h2", "count:=3", "tags:=[\"a\",\"b\"]"])
        #expect(items.headers.map(\.name) == ["X-API-Key"] && items.headers.map(\.value) == ["abc"])
        #expect(items.query.map(\.name) == ["page"] && items.query.map(\.value) == ["2"])
        #expect(items.jsonFields.map(\.name) == ["name", "count", "tags"])
        #expect(items.jsonBody == #"{"name": "h2", "count": 3, "tags": ["a","b"]}"#)
        #expect(try RequestItems(parsing: ["@body.json"]).bodyFile == "body.json")
    }

    @Test func theEarliestSeparatorWinsAndLongerOnesBeatShorterOnes() throws {
        // ":" comes before "=": a header whose value contains "=".
        #expect(try RequestItems(parsing: ["Authorization:Bearer a=b"]).headers.first?.value == "Bearer a=b")
        // "=" comes before ":": a field whose value contains ":".
        #expect(try RequestItems(parsing: ["url=http://x"]).jsonFields.first?.json == #""http://x""#)
        // At the same position, ":=" beats ":" and "==" beats "=".
        #expect(try RequestItems(parsing: ["n:=1"]).jsonFields.first?.json == "1")
        #expect(try RequestItems(parsing: ["q==a=b"]).query.first?.value == "a=b")
    }

    @Test func escapes() throws {
        let items = try RequestItems(parsing: [#"a\:b:c"#, #"key\=x=value"#, #"\@notafile=1"#])
        #expect(items.headers.first?.name == "a:b" && items.headers.first?.value == "c")
        #expect(items.jsonFields.map(\.name) == ["key=x", "@notafile"])
    }

    @Test func errors() {
        #expect(throws: RequestItems.ParseError.noSeparator("plain")) { try RequestItems(parsing: ["plain"]) }
        #expect(throws: RequestItems.ParseError.emptyName(":value")) { try RequestItems(parsing: [":value"]) }
        #expect(throws: RequestItems.ParseError.invalidJSON("n:={oops")) { try RequestItems(parsing: ["n:={oops"]) }
        #expect(throws: RequestItems.ParseError.twoBodyFiles("@b")) { try RequestItems(parsing: ["@a", "@b"]) }
        #expect(throws: RequestItems.ParseError.bodyFileAndFields) { try RequestItems(parsing: ["@a", "x=1"]) }
    }

    @Test func queryParametersAreEncodedAndAppended() throws {
        let items = try RequestItems(parsing: ["q==a b&c", "page==2"])
        #expect(items.applyQuery(to: "/search") == "/search?q=a%20b%26c&page=2")
        #expect(items.applyQuery(to: "/search?x=1") == "/search?x=1&q=a%20b%26c&page=2")
    }

    @Test func invocationDefaultsTheMethodFromTheBody() throws {
        let get = try Invocation(words: ["http://127.0.0.1:8080/get"], stdin: nil)
        #expect(get.request.method == .get)
        #expect(get.request.path == "/get")
        #expect(get.request.authority == "127.0.0.1:8080")
        let post = try Invocation(words: [":8080/post", "a=1"], stdin: nil)
        #expect(post.request.method == .post)
        #expect(post.request.authority == "127.0.0.1:8080")
        let piped = try Invocation(words: ["http://localhost/echo"], stdin: .init("hi".utf8))
        #expect(piped.request.method == .post)
        let put = try Invocation(words: ["put", "http://localhost/x"], stdin: nil)
        #expect(put.request.method == .put)
        #expect(throws: Invocation.Error.self) { try Invocation(words: ["ftp://x/"], stdin: nil) }
        #expect(throws: Invocation.Error.self) { try Invocation(words: [], stdin: nil) }
    }
}
