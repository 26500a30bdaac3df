import Foundation

/// The request items of `h2 [METHOD] URL [ITEM ...]`, as in HTTPie:
///
/// | item            | meaning                                   |
/// |-----------------|-------------------------------------------|
/// | `Name:Value`    | a header field                            |
/// | `name==value`   | a query parameter                         |
/// | `name=value`    | a JSON string field of the body           |
/// | `name:=json`    | a raw JSON field of the body              |
/// | `@file`         | the body is the file's bytes              |
///
/// A backslash escapes a separator character (`\:`, `\=`, `\@`, `\\`).
struct RequestItems: Equatable {
    var headers: [(name: String, value: String)] = []
    var query: [(name: String, value: String)] = []
    /// JSON body fields, in order, each already encoded as JSON.
    var jsonFields: [(name: String, json: String)] = []
    var bodyFile: String?

    enum ParseError: Error, Equatable, CustomStringConvertible {
        case noSeparator(String)
        case emptyName(String)
        case invalidJSON(String)
        case twoBodyFiles(String)
        case bodyFileAndFields

        var description: String {
            switch self {
            case .noSeparator(let item): "'\(item)' is not a request item (Name:Value, name==value, name=value, name:=json or @file)"
            case .emptyName(let item): "'\(item)' has no name"
            case .invalidJSON(let item): "'\(item)': the value after := is not valid JSON"
            case .twoBodyFiles(let item): "'\(item)': only one @file body is allowed"
            case .bodyFileAndFields: "a request has either JSON fields (name=value, name:=json) or an @file body, not both"
            }
        }
    }

    static func == (lhs: RequestItems, rhs: RequestItems) -> Bool {
        lhs.headers.map { [$0.name, $0.value] } == rhs.headers.map { [$0.name, $0.value] }
            && lhs.query.map { [$0.name, $0.value] } == rhs.query.map { [$0.name, $0.value] }
            && lhs.jsonFields.map { [$0.name, $0.json] } == rhs.jsonFields.map { [$0.name, $0.json] }
            && lhs.bodyFile == rhs.bodyFile
    }

    init() {}

    init(parsing items: [String]) throws {
        for item in items { try add(item) }
        if bodyFile != nil, !jsonFields.isEmpty { throw ParseError.bodyFileAndFields }
    }

    private enum Separator: String, CaseIterable {
        // Longest first, so that at one position ":=" wins over ":" and "==" over "=".
        case rawJSON = ":="
        case query = "=="
        case header = ":"
        case field = "="
    }

    private mutating func add(_ item: String) throws {
        if item.hasPrefix("@") {
            guard bodyFile == nil else { throw ParseError.twoBodyFiles(item) }
            bodyFile = unescape(String(item.dropFirst()))
            return
        }
        let characters = Array(item)
        var index = 0
        while index < characters.count {
            if characters[index] == "\\" {
                index += 2
                continue
            }
            for separator in Separator.allCases {
                let token = Array(separator.rawValue)
                guard index + token.count <= characters.count, Array(characters[index..<(index + token.count)]) == token else { continue }
                let name = unescape(String(characters[..<index]))
                let value = unescape(String(characters[(index + token.count)...]))
                guard !name.isEmpty else { throw ParseError.emptyName(item) }
                switch separator {
                case .header: headers.append((name, value))
                case .query: query.append((name, value))
                case .field: jsonFields.append((name, Self.jsonString(value)))
                case .rawJSON:
                    guard (try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed])) != nil else {
                        throw ParseError.invalidJSON(item)
                    }
                    jsonFields.append((name, value))
                }
                return
            }
            index += 1
        }
        throw ParseError.noSeparator(item)
    }

    private func unescape(_ text: String) -> String {
        var result = ""
        var escaping = false
        for character in text {
            if escaping {
                result.append(character)
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                result.append(character)
            }
        }
        if escaping { result.append("\\") }
        return result
    }

    static func jsonString(_ value: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// The JSON object made of the fields, in order; `nil` without fields.
    var jsonBody: String? {
        guard !jsonFields.isEmpty else { return nil }
        return "{" + jsonFields.map { "\(Self.jsonString($0.name)): \($0.json)" }.joined(separator: ", ") + "}"
    }

    /// `path` with the query parameters appended (percent-encoded).
    func applyQuery(to path: String) -> String {
        guard !query.isEmpty else { return path }
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        let encoded = query.map {
            "\($0.name.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.name)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.value)"
        }
        return path + (path.contains("?") ? "&" : "?") + encoded.joined(separator: "&")
    }
}
