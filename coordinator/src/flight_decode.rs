//! Decoding a Flight stream of record batches (a worker's partial state, a
//! coordinator's result table): the IPC schema message, then record batch
//! messages, each decoded where its body arrived. arrow-flight's own
//! decoder copies every message body that does not start on a 64-byte
//! boundary, which is almost every one (a body follows the message's
//! protobuf fields in the gRPC buffer): megabytes per state, hundreds of
//! them in a job over a large file. Here only the typed buffers that are
//! not aligned for their type are copied (an invoice key's or an id's
//! bytes never are: their type needs no alignment). A message whose header
//! and body disagree is an error, never a panic (arrow's decoder panics on
//! a buffer beyond the body).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::RecordBatchDecoder;
use arrow::ipc::MessageHeader;
use arrow_flight::FlightData;

/// The decoder of one stream: it keeps the schema the stream began with.
#[derive(Debug, Default)]
pub struct BatchDecoder {
    schema: Option<SchemaRef>,
}

impl BatchDecoder {
    /// Decodes the stream's next message: the batch it holds, or `None`
    /// for the schema. A message that is not the schema, once, then record
    /// batches is an error that says what it is.
    pub fn decode(&mut self, data: &FlightData) -> Result<Option<RecordBatch>, String> {
        let message = arrow::ipc::root_as_message(&data.data_header)
            .map_err(|e| format!("a message header is not an Arrow IPC message: {e}"))?;
        match message.header_type() {
            MessageHeader::Schema => {
                if self.schema.is_some() {
                    return Err("a second schema message".into());
                }
                let schema = message
                    .header_as_schema()
                    .ok_or("a schema message without its schema")?;
                let schema = arrow::ipc::convert::try_fb_to_schema(schema)
                    .map_err(|e| format!("the schema message does not decode: {e}"))?;
                self.schema = Some(Arc::new(schema));
                Ok(None)
            }
            MessageHeader::RecordBatch => {
                let schema = self
                    .schema
                    .clone()
                    .ok_or("a record batch before the schema")?;
                let batch = message
                    .header_as_record_batch()
                    .ok_or("a record batch message without its batch")?;
                // The decoder slices the body as the header says, and
                // panics on a buffer beyond its end: checked here first.
                let body_len = data.data_body.len() as u64;
                for b in batch.buffers().into_iter().flatten() {
                    let end = u64::try_from(b.offset())
                        .ok()
                        .zip(u64::try_from(b.length()).ok())
                        .and_then(|(offset, length)| offset.checked_add(length));
                    if end.is_none_or(|end| end > body_len) {
                        return Err(format!(
                            "a record batch's buffer lies beyond its {body_len}-byte body"
                        ));
                    }
                }
                // The body where it arrived (no copy); the decoder copies
                // only the buffers misaligned for their type.
                let body = Buffer::from(data.data_body.clone());
                let no_dictionaries = HashMap::new();
                let version = message.version();
                // Any other inconsistency the decoder meets with a panic
                // is this stream's error too, not the coordinator's.
                let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    RecordBatchDecoder::try_new(&body, batch, schema, &no_dictionaries, &version)
                        .and_then(|d| d.read_record_batch())
                }))
                .map_err(|_| "a record batch does not decode: its header and body disagree")?
                .map_err(|e| format!("a record batch does not decode: {e}"))?;
                Ok(Some(decoded))
            }
            other => Err(format!(
                "an unexpected {} message",
                other.variant_name().unwrap_or("unknown")
            )),
        }
    }

    /// The stream's schema, once it has come; at the stream's end, none is
    /// an error.
    pub fn schema(&self) -> Result<&SchemaRef, String> {
        self.schema
            .as_ref()
            .ok_or_else(|| "the stream ended before its schema".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Decimal128Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use futures::TryStreamExt;

    /// The Flight messages a worker sends for `batch`, as it sends them.
    async fn messages(batch: RecordBatch) -> Vec<FlightData> {
        FlightDataEncoderBuilder::new()
            .with_max_flight_data_size(1 << 10)
            .build(futures::stream::once(async move { Ok(batch) }))
            .try_collect()
            .await
            .unwrap()
    }

    /// A batch whose columns need 8- and 16-byte alignment.
    fn typed_batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("amount", DataType::Decimal128(38, 4), false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(
                    Decimal128Array::from_iter_values((0..rows).map(|i| i as i128 * 7))
                        .with_precision_and_scale(38, 4)
                        .unwrap(),
                ),
            ],
        )
        .unwrap()
    }

    /// Moves a message's body to `shift` bytes past a 64-byte boundary, as
    /// a body lands in the gRPC buffer.
    fn shifted(mut data: FlightData, shift: usize) -> FlightData {
        let mut bytes = vec![0u8; data.data_body.len() + 64 + shift];
        let start = bytes.as_ptr().align_offset(64) + shift;
        bytes[start..start + data.data_body.len()].copy_from_slice(&data.data_body);
        data.data_body = bytes::Bytes::from(bytes).slice(start..start + data.data_body.len());
        data
    }

    #[tokio::test]
    async fn batches_at_any_alignment_decode_to_what_was_sent() {
        let batch = typed_batch(1000);
        let sent = messages(batch.clone()).await;
        assert!(sent.len() > 2, "the batch is split into several messages");
        for shift in [0, 1, 3, 8, 13] {
            let mut decoder = BatchDecoder::default();
            let mut batches = Vec::new();
            for data in &sent {
                batches.extend(decoder.decode(&shifted(data.clone(), shift)).unwrap());
            }
            let schema = decoder.schema().unwrap().clone();
            assert_eq!(schema, batch.schema());
            let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
            assert_eq!(all, batch, "shift {shift}");
        }
    }

    #[tokio::test]
    async fn a_stream_out_of_order_is_refused() {
        let sent = messages(typed_batch(10)).await;
        // A batch before the schema.
        let mut decoder = BatchDecoder::default();
        let err = decoder.decode(&sent[1]).unwrap_err();
        assert!(err.contains("before the schema"), "{err}");
        // A second schema.
        let mut decoder = BatchDecoder::default();
        assert!(decoder.decode(&sent[0]).unwrap().is_none());
        let err = decoder.decode(&sent[0]).unwrap_err();
        assert!(err.contains("second schema"), "{err}");
        // No schema at all.
        let err = BatchDecoder::default().schema().unwrap_err();
        assert!(err.contains("before its schema"), "{err}");
        // A header that is not an IPC message.
        let mut decoder = BatchDecoder::default();
        let junk = FlightData {
            data_header: bytes::Bytes::from_static(b"not a flatbuffer"),
            ..FlightData::default()
        };
        assert!(decoder.decode(&junk).is_err());
    }

    /// arrow-flight's own decoder panics on such a body (the IPC decoder
    /// slices it as the header says): a forged or faulty worker could end
    /// the coordinator's fetch with a panic.
    #[tokio::test]
    async fn a_body_cut_short_is_an_error_not_a_panic() {
        let sent = messages(typed_batch(100)).await;
        let mut decoder = BatchDecoder::default();
        decoder.decode(&sent[0]).unwrap();
        let mut cut = sent[1].clone();
        cut.data_body = cut.data_body.slice(..cut.data_body.len() / 2);
        let err = decoder.decode(&cut).unwrap_err();
        assert!(err.contains("beyond its"), "{err}");
        // The whole message still decodes after the bad one was refused.
        assert!(decoder.decode(&sent[1]).unwrap().is_some());
    }
}
