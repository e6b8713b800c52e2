//! Streamed answers: the caller gets the stream as soon as the runtime begins its `/response`,
//! while the sandbox keeps the invocation's deadline until the stream ends.

use std::sync::Arc;

use coldstart_protocol::telemetry::Status;
use tokio::sync::{mpsc, oneshot};

use super::reports::ReportStatus;
use super::{Fact, Refusal, Sandbox};
use crate::invocation::{InvokeResponse, Outcome, ResponseStream, StreamError, StreamItem};

impl Sandbox {
    /// The runtime began a streamed `/response`: answers the caller with the stream at once and
    /// returns its sender, and where a forced end (deadline, runtime's death) will arrive. The
    /// deadline keeps running while the stream does.
    pub(crate) fn start_stream(
        self: &Arc<Self>,
        request_id: &str,
        content_type: Option<String>,
    ) -> Result<(mpsc::Sender<StreamItem>, oneshot::Receiver<StreamItem>), Refusal> {
        let started = self.lock().start_stream(request_id)?;
        let (tx, stream) = ResponseStream::channel();
        let _ = started.reply.send(InvokeResponse {
            request_id: request_id.to_owned(),
            outcome: Outcome::Stream {
                content_type,
                stream,
            },
            log_tail: None,
        });
        let sandbox = self.clone();
        let id = request_id.to_owned();
        let (deadline, ended) = (started.deadline, started.ended);
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => sandbox.time_out(&id),
                // The stream ended first.
                _ = ended => {}
            }
        });
        Ok((tx, started.forced_end))
    }

    /// The runtime's streamed `/response` ended (`error` from its trailers, a cut, or the size
    /// cap). Writes `END`/`REPORT` and returns the log tail for the stream's end.
    pub(crate) fn finish_stream(
        self: &Arc<Self>,
        request_id: &str,
        error: Option<&StreamError>,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        let answered = self.lock().finish_stream(request_id)?;
        let running = answered.running;
        if let Some(finished) = answered.extensions_busy {
            self.bound_extensions(request_id, running.deadline, finished);
        }
        self.tell(Fact::Responded);
        self.slot_freed();
        let done = if error.is_some() {
            Status::Error
        } else {
            Status::Success
        };
        self.publish_runtime_done(
            &running,
            done,
            error.map(|e| e.error_type.as_str()),
            None,
            None,
        );
        let status = error.map(|e| ReportStatus::Error(e.error_type.clone()));
        self.logs.drain();
        self.write_end_report(request_id, running.started.elapsed(), running.init, status);
        Ok(self.logs.end_invocation())
    }
}
