extension Frame: CustomStringConvertible {
    /// The frame in the style of `nghttp -v`: type, length, flags and stream, then its fields, one per line.
    ///
    /// ```
    /// [HEADERS frame <length=30, flags=0x05, stream_id=1>]
    ///           ; END_STREAM | END_HEADERS
    ///           (padlen=0)
    ///           ; Open new stream
    ///           :method: GET
    /// ```
    public var description: String {
        var lines = ["[\(type) frame <length=\(header.length), flags=0x\(hex(flags.rawValue)), stream_id=\(streamID)>]"]
        let flagNames = flagNames()
        if !flagNames.isEmpty { lines.append("; " + flagNames.joined(separator: " | ")) }
        switch payload {
        case .data(let padding):
            if padding > 0 { lines.append("(padlen=\(padding))") }
        case .headers(let category, let fields, let priority, let padding):
            lines.append("(padlen=\(padding)\(priority.map { ", dep_stream_id=\($0.dependsOn), weight=\($0.weight), exclusive=\($0.isExclusive ? 1 : 0)" } ?? ""))")
            switch category {
            case .request: lines.append("; Open new stream")
            case .response: lines.append("; First response header")
            case .pushResponse: lines.append("; First push response header")
            case .headers: break
            }
            lines += fields.map(\.description)
        case .priority(let spec):
            lines.append("(dep_stream_id=\(spec.dependsOn), weight=\(spec.weight), exclusive=\(spec.isExclusive ? 1 : 0))")
        case .rstStream(let code):
            lines.append("(error_code=\(code)(0x\(hex(code.rawValue))))")
        case .settings(let settings):
            lines.append("(niv=\(settings.count))")
            lines += settings.map { "[\($0.id)(0x\(hex($0.id.rawValue))):\($0.value)]" }
        case .pushPromise(let promised, let fields):
            lines.append("(promised_stream_id=\(promised))")
            lines += fields.map(\.description)
        case .ping(let opaque):
            lines.append("(opaque_data=\(hex(opaque, width: 16)))")
        case .goaway(let last, let code, let debug):
            let debugText = String(decoding: debug, as: UTF8.self)
            lines.append("(last_stream_id=\(last), error_code=\(code)(0x\(hex(code.rawValue))), opaque_data(\(debug.count))=[\(debugText)])")
        case .windowUpdate(let increment):
            lines.append("(window_size_increment=\(increment))")
        case .altsvc(let origin, let value):
            lines.append("(origin=[\(origin)], altsvc_field_value=[\(value)])")
        case .origin(let origins):
            lines += origins.map { "[\($0)]" }
        case .priorityUpdate(let prioritized, let value):
            lines.append("(prioritized_stream_id=\(prioritized), priority_field_value=[\(value)])")
        case .unknown(let payload):
            lines.append("(payload=\(payload.count) bytes)")
        }
        return lines.enumerated().map { $0.offset == 0 ? $0.element : "          " + $0.element }.joined(separator: "\n")
    }

    private func flagNames() -> [String] {
        var names: [String] = []
        switch type {
        case .data, .headers:
            if flags.contains(.endStream) { names.append("END_STREAM") }
        case .settings, .ping:
            if flags.contains(.ack) { names.append("ACK") }
        default:
            break
        }
        if [.headers, .pushPromise, .continuation].contains(type), flags.contains(.endHeaders) { names.append("END_HEADERS") }
        if [.data, .headers, .pushPromise].contains(type), flags.contains(.padded) { names.append("PADDED") }
        if type == .headers, flags.contains(.priority) { names.append("PRIORITY") }
        return names
    }
}

private func hex<T: BinaryInteger>(_ value: T, width: Int = 2) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
