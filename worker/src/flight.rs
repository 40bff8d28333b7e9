//! The worker's Arrow Flight service: `DoGet` streams a finished task's
//! partial state (encoded then, if it was kept as computed); the ticket is
//! a `FlightTicket` (job, task and attempt ids, never a path). Every other
//! Flight method is unimplemented.

use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::{FlightData, Ticket};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use rfm_proto::flight::FlightStream;
use rfm_proto::v1::FlightTicket;
use tonic::{Request, Response, Status};

use crate::tasks::{Kept, TaskKey, TaskStore};

/// Serves finished partial states.
pub struct StateFlightService {
    store: Arc<TaskStore>,
}

impl StateFlightService {
    pub fn new(store: Arc<TaskStore>) -> Self {
        StateFlightService { store }
    }
}

rfm_proto::flight_do_get_only!(StateFlightService, "the rfm worker");

impl StateFlightService {
    /// `DoGet`: the finished state of the ticket's task attempt.
    async fn get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream<FlightData>>, Status> {
        let ticket = FlightTicket::decode(request.into_inner().ticket).map_err(|e| {
            Status::invalid_argument(format!("the ticket is not an rfm FlightTicket: {e}"))
        })?;
        rfm_proto::ident::check_job_id(&ticket.job_id)?;
        let key = TaskKey::new(&ticket.job_id, ticket.task_id, ticket.attempt);
        let kept = self.store.finished(&key).ok_or_else(|| {
            Status::not_found(format!(
                "this worker holds no finished state for job {} task {} attempt {}",
                key.job_id, key.task_id, key.attempt
            ))
        })?;
        let batch = match kept {
            Kept::Batch(batch) => batch,
            // Encoded on a thread of its own: the compute pool may be busy
            // with the next task for as long as a task takes.
            Kept::State(state) => tokio::task::spawn_blocking(move || state.to_record_batch())
                .await
                .map_err(|e| Status::internal(format!("encoding the state failed: {e}")))?,
        };
        let stream = FlightDataEncoderBuilder::new()
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(Status::from);
        Ok(Response::new(stream.boxed()))
    }
}
