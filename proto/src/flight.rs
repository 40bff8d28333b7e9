//! What the rfm Arrow Flight services share: each serves `DoGet` alone (a
//! worker its tasks' partial states, a coordinator its jobs' scored tables).
//! [`flight_do_get_only!`](crate::flight_do_get_only) implements
//! arrow-flight's `FlightService` for such a service, every other method
//! answering UNIMPLEMENTED. Its expansion names `arrow_flight` and `tonic`:
//! the crate that uses it depends on both.

/// The stream type of every Flight method of an rfm service.
pub type FlightStream<T> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;

/// The answer of a Flight method `what` that the rfm service `who` does not serve.
pub fn unsupported(what: &str, who: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!("{what} is not supported by {who}; use DoGet"))
}

/// Implements `arrow_flight::flight_service_server::FlightService` for
/// `$service`, named `$who` in refusals: `DoGet` calls the service's own
/// `async fn get(&self, Request<Ticket>) -> Result<Response<FlightStream<FlightData>>, Status>`;
/// every other method is UNIMPLEMENTED.
#[macro_export]
macro_rules! flight_do_get_only {
    ($service:ty, $who:literal) => {
        #[::tonic::async_trait]
        impl ::arrow_flight::flight_service_server::FlightService for $service {
            type HandshakeStream = $crate::flight::FlightStream<::arrow_flight::HandshakeResponse>;
            type ListFlightsStream = $crate::flight::FlightStream<::arrow_flight::FlightInfo>;
            type DoGetStream = $crate::flight::FlightStream<::arrow_flight::FlightData>;
            type DoPutStream = $crate::flight::FlightStream<::arrow_flight::PutResult>;
            type DoExchangeStream = $crate::flight::FlightStream<::arrow_flight::FlightData>;
            type DoActionStream = $crate::flight::FlightStream<::arrow_flight::Result>;
            type ListActionsStream = $crate::flight::FlightStream<::arrow_flight::ActionType>;

            async fn do_get(
                &self,
                request: ::tonic::Request<::arrow_flight::Ticket>,
            ) -> ::std::result::Result<::tonic::Response<Self::DoGetStream>, ::tonic::Status> {
                self.get(request).await
            }

            async fn handshake(
                &self,
                _request: ::tonic::Request<::tonic::Streaming<::arrow_flight::HandshakeRequest>>,
            ) -> ::std::result::Result<::tonic::Response<Self::HandshakeStream>, ::tonic::Status>
            {
                Err($crate::flight::unsupported("Handshake", $who))
            }

            async fn list_flights(
                &self,
                _request: ::tonic::Request<::arrow_flight::Criteria>,
            ) -> ::std::result::Result<::tonic::Response<Self::ListFlightsStream>, ::tonic::Status>
            {
                Err($crate::flight::unsupported("ListFlights", $who))
            }

            async fn get_flight_info(
                &self,
                _request: ::tonic::Request<::arrow_flight::FlightDescriptor>,
            ) -> ::std::result::Result<::tonic::Response<::arrow_flight::FlightInfo>, ::tonic::Status>
            {
                Err($crate::flight::unsupported("GetFlightInfo", $who))
            }

            async fn poll_flight_info(
                &self,
                _request: ::tonic::Request<::arrow_flight::FlightDescriptor>,
            ) -> ::std::result::Result<::tonic::Response<::arrow_flight::PollInfo>, ::tonic::Status>
            {
                Err($crate::flight::unsupported("PollFlightInfo", $who))
            }

            async fn get_schema(
                &self,
                _request: ::tonic::Request<::arrow_flight::FlightDescriptor>,
            ) -> ::std::result::Result<::tonic::Response<::arrow_flight::SchemaResult>, ::tonic::Status>
            {
                Err($crate::flight::unsupported("GetSchema", $who))
            }

            async fn do_put(
                &self,
                _request: ::tonic::Request<::tonic::Streaming<::arrow_flight::FlightData>>,
            ) -> ::std::result::Result<::tonic::Response<Self::DoPutStream>, ::tonic::Status> {
                Err($crate::flight::unsupported("DoPut", $who))
            }

            async fn do_exchange(
                &self,
                _request: ::tonic::Request<::tonic::Streaming<::arrow_flight::FlightData>>,
            ) -> ::std::result::Result<::tonic::Response<Self::DoExchangeStream>, ::tonic::Status>
            {
                Err($crate::flight::unsupported("DoExchange", $who))
            }

            async fn do_action(
                &self,
                _request: ::tonic::Request<::arrow_flight::Action>,
            ) -> ::std::result::Result<::tonic::Response<Self::DoActionStream>, ::tonic::Status> {
                Err($crate::flight::unsupported("DoAction", $who))
            }

            async fn list_actions(
                &self,
                _request: ::tonic::Request<::arrow_flight::Empty>,
            ) -> ::std::result::Result<::tonic::Response<Self::ListActionsStream>, ::tonic::Status>
            {
                Err($crate::flight::unsupported("ListActions", $who))
            }
        }
    };
}
