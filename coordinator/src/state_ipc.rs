//! Partial states as Arrow IPC stream bytes: how a finished job's merged state
//! travels to the client in `GetJobResult`.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use rfm_core::PartialState;

/// Encodes a state as one Arrow IPC stream.
pub fn encode(state: &PartialState) -> Result<Vec<u8>, String> {
    let batch = state.to_record_batch();
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, &batch.schema())
        .map_err(|e| format!("cannot encode the state: {e}"))?;
    writer
        .write(&batch)
        .map_err(|e| format!("cannot encode the state: {e}"))?;
    writer
        .finish()
        .map_err(|e| format!("cannot encode the state: {e}"))?;
    drop(writer);
    Ok(buf)
}

/// Decodes [`encode`]'s bytes.
pub fn decode(bytes: &[u8]) -> Result<PartialState, String> {
    let reader = StreamReader::try_new(bytes, None)
        .map_err(|e| format!("the state is not Arrow IPC: {e}"))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the state is not Arrow IPC: {e}"))?;
    PartialState::from_record_batches(&schema, &batches).map_err(|e| e.to_string())
}
