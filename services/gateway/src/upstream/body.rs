//! Bodies on the way through the pool, neither of them buffered: the request
//! body is lent to one attempt at a time and can be had back if that attempt
//! never read it; the response body holds its endpoint's in-flight count until
//! it ends or is dropped.

use super::endpoint::InFlight;
use axum::body::{Body, HttpBody};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// The request body, untouched until an attempt first polls it.
#[derive(Clone)]
pub(crate) struct Unread {
    slot: Arc<Mutex<Option<Body>>>,
    hint: SizeHint,
    empty: bool,
}

impl Unread {
    pub(crate) fn new(body: Body) -> Unread {
        let hint = body.size_hint();
        let empty = body.is_end_stream();
        Unread { slot: Arc::new(Mutex::new(Some(body))), hint, empty }
    }

    /// Still whole: no attempt has read from it, so it can be sent again.
    pub(crate) fn is_whole(&self) -> bool {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// A body for one attempt, taking the real one out on first poll.
    pub(crate) fn lend(&self) -> Lent {
        Lent { unread: Some(self.clone()), body: None }
    }
}

pub(crate) struct Lent {
    unread: Option<Unread>,
    body: Option<Body>,
}

impl HttpBody for Lent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Some(unread) = this.unread.take() {
            this.body = unread.slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        match this.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match (&self.unread, &self.body) {
            (Some(unread), _) => unread.empty,
            (None, Some(body)) => body.is_end_stream(),
            (None, None) => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.unread, &self.body) {
            (Some(unread), _) => unread.hint,
            (None, Some(body)) => body.size_hint(),
            (None, None) => SizeHint::with_exact(0),
        }
    }
}

/// A response body that keeps its request counted as in flight.
pub(crate) struct Tracked {
    body: Incoming,
    in_flight: Option<InFlight>,
}

impl Tracked {
    pub(crate) fn new(body: Incoming, in_flight: InFlight) -> Tracked {
        Tracked { body, in_flight: Some(in_flight) }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.in_flight = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_lent_body_comes_back_only_if_never_read() {
        let unread = Unread::new(Body::from("payload"));
        let first = unread.lend();
        assert_eq!(first.size_hint().exact(), Some(7));
        drop(first);
        assert!(unread.is_whole());
        let bytes = unread.lend().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"payload");
        assert!(!unread.is_whole());
    }
}
