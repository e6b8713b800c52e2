//! InvokeWithResponseStream's framing: `application/vnd.amazon.eventstream` messages built with
//! `aws-smithy-eventstream` (prelude, headers, CRCs), one `PayloadChunk` event per chunk, then one
//! `InvokeComplete` event.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use serde::Serialize;

use coldstart_protocol::invoke::{EVENT_INVOKE_COMPLETE, EVENT_PAYLOAD_CHUNK};

/// A `PayloadChunk` event carrying `chunk` verbatim.
pub(crate) fn payload_chunk(chunk: Bytes) -> Bytes {
    event(EVENT_PAYLOAD_CHUNK, "application/octet-stream", chunk)
}

/// The body of an `InvokeComplete` event; absent members are omitted.
#[derive(Debug, Default, Serialize)]
pub(crate) struct InvokeComplete {
    #[serde(rename = "ErrorCode", skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<String>,
    #[serde(rename = "ErrorDetails", skip_serializing_if = "Option::is_none")]
    pub(crate) error_details: Option<String>,
    #[serde(rename = "LogResult", skip_serializing_if = "Option::is_none")]
    pub(crate) log_result: Option<String>,
}

/// The `InvokeComplete` event.
pub(crate) fn invoke_complete(complete: &InvokeComplete) -> Bytes {
    let json = serde_json::to_vec(complete).unwrap_or_default();
    event(EVENT_INVOKE_COMPLETE, "application/json", Bytes::from(json))
}

fn event(event_type: &'static str, content_type: &'static str, payload: Bytes) -> Bytes {
    let message = Message::new(payload)
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String(content_type.into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ));
    let mut out = Vec::with_capacity(message.payload().len() + 96);
    // Writing to a Vec fails only for headers or payloads over the format's limits, which these
    // fixed headers and 16 MB-bounded chunks are not.
    let _ = write_message_to(&message, &mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;

    fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
        message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str())
    }

    #[test]
    fn payload_chunk_frames_read_back_with_lambdas_headers() {
        let frame = payload_chunk(Bytes::from_static(b"hi"));
        // The example from the spec: a PayloadChunk of `hi` is 108 bytes.
        assert_eq!(frame.len(), 108);
        let message = read_message_from(frame).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(message.payload().as_ref(), b"hi");
        assert_eq!(header(&message, ":event-type"), Some("PayloadChunk"));
        assert_eq!(header(&message, ":message-type"), Some("event"));
    }

    #[test]
    fn invoke_complete_omits_absent_members() {
        let frame = invoke_complete(&InvokeComplete {
            error_code: Some("Runtime.StreamError".into()),
            ..Default::default()
        });
        let message = read_message_from(frame).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header(&message, ":event-type"), Some("InvokeComplete"));
        assert_eq!(
            message.payload().as_ref(),
            br#"{"ErrorCode":"Runtime.StreamError"}"#
        );
    }

    /// Feeds `wire` to the SDK's streaming decoder in pieces of `cuts` bytes, as a socket would.
    fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> Vec<Message> {
        use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
        let mut decoder = MessageFrameDecoder::new();
        let mut buffer = bytes::BytesMut::new();
        let mut messages = Vec::new();
        let mut at = 0;
        let mut cuts = cuts.iter().cycle();
        while at < wire.len() {
            let n = (*cuts.next().unwrap_or(&1)).clamp(1, wire.len() - at);
            buffer.extend_from_slice(&wire[at..at + n]);
            at += n;
            // A piece may complete more than one message.
            while let DecodedFrame::Complete(m) = decoder
                .decode_frame(&mut buffer)
                .unwrap_or_else(|e| panic!("{e}"))
            {
                messages.push(m);
            }
        }
        messages
    }

    proptest::proptest! {
        #[test]
        fn any_chunks_then_complete_decode_back_in_order_however_the_wire_is_cut(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..2048), 0..8),
            code in proptest::option::of("[A-Za-z.]{1,24}"),
            details in proptest::option::of("\\PC{0,40}"),
            cuts in proptest::collection::vec(1usize..300, 1..6),
        ) {
            let mut wire = Vec::new();
            for chunk in &chunks {
                wire.extend_from_slice(&payload_chunk(Bytes::from(chunk.clone())));
            }
            let complete = InvokeComplete { error_code: code.clone(), error_details: details.clone(), log_result: None };
            wire.extend_from_slice(&invoke_complete(&complete));
            let messages = decode_in_pieces(&wire, &cuts);
            proptest::prop_assert_eq!(messages.len(), chunks.len() + 1);
            for (message, chunk) in messages.iter().zip(&chunks) {
                proptest::prop_assert_eq!(header(message, ":event-type"), Some("PayloadChunk"));
                proptest::prop_assert_eq!(message.payload().as_ref(), chunk.as_slice());
            }
            let last = &messages[chunks.len()];
            proptest::prop_assert_eq!(header(last, ":event-type"), Some("InvokeComplete"));
            let body: serde_json::Value = serde_json::from_slice(last.payload()).unwrap_or_default();
            proptest::prop_assert_eq!(body.get("ErrorCode").and_then(|v| v.as_str()), code.as_deref());
            proptest::prop_assert_eq!(body.get("ErrorDetails").and_then(|v| v.as_str()), details.as_deref());
        }
    }
}
