import HTTPTypes
import NGHTTP2

/// Turns a connection's received field blocks into `HTTPFields`, reusing the conversions of the block before.
///
/// swift-http-types checks every field name and value it is given; libnghttp2 already checked them
/// ([RFC 9113 §8.2.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.2.1)). The heads a connection receives
/// mostly repeat the one before field by field (the same server's `server`, `content-type`, `date` for a second), and
/// repeated fields come from the HPACK tables as the same `String`s (``FieldStringCache``), so comparing a field with
/// the one at its place in the block before costs a few instructions. A field that matches reuses that block's
/// `HTTPField`; a block that matches whole is returned as it was (one retain). Other fields are converted.
///
/// One per connection, used on its event loop.
struct ReceivedFieldsConverter {
    /// The regular fields of the last block converted, and what they became (the same count, in the same order).
    private var lastFields: [HeaderField] = []
    private var lastConverted = HTTPFields()
    /// The last request made, with the pseudo-header field values it was made from.
    private var lastRequest: (pseudo: RequestPseudoFields, request: HTTPRequest)?

    /// The values of a request's pseudo-header fields, as received.
    struct RequestPseudoFields: Equatable {
        var method: String
        var scheme: String?
        var authority: String?
        var path: String?
        var protocolName: String?
    }

    /// The request made from `pseudo` last time, if the last request had these pseudo-header fields (swift-http-types
    /// checks them again when a request is made).
    func request(_ pseudo: RequestPseudoFields) -> HTTPRequest? {
        guard let lastRequest, lastRequest.pseudo == pseudo else { return nil }
        return lastRequest.request
    }

    /// Keeps `request`, made from `pseudo`, for the next ``request(_:)``.
    mutating func made(_ request: HTTPRequest, from pseudo: RequestPseudoFields) {
        lastRequest = (pseudo, request)
    }

    /// The regular fields of `block` (pseudo-header fields are skipped) as `HTTPFields`.
    mutating func httpFields(_ block: [HeaderField]) -> HTTPFields {
        if matchesLast(block) { return lastConverted }
        var converted = HTTPFields()
        converted.reserveCapacity(block.count)
        var regular: [HeaderField] = []
        regular.reserveCapacity(block.count)
        for field in block where !field.name.isPseudoFieldName {
            let index = regular.count
            if index < lastFields.count, lastFields[index] == field {
                converted.append(lastConverted[index])
            } else if let httpField = HTTPField(http2Field: field) {
                converted.append(httpField)
            } else {
                continue  // not a field swift-http-types can hold: dropped, as HTTPFields(http2Fields:) does
            }
            regular.append(field)
        }
        lastFields = regular
        lastConverted = converted
        return converted
    }

    /// Whether the regular fields of `block` are those of the last block, in the same order.
    private func matchesLast(_ block: [HeaderField]) -> Bool {
        guard !lastFields.isEmpty else { return false }
        var index = 0
        for field in block where !field.name.isPseudoFieldName {
            guard index < lastFields.count, lastFields[index] == field else { return false }
            index += 1
        }
        return index == lastFields.count
    }
}
