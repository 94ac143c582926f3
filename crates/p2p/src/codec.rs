//! The JSON codec of `/gpuflow/rental/1` and `/gpuflow/sync/1`.
//!
//! The bytes on the wire are those of `libp2p::request_response::json`: a message is its
//! JSON, ended by the end of the writer's side of the stream, with no length prefix. What
//! differs is what a failure says. Input over the limit fails as soon as one byte more
//! than the limit arrived, with an error that names the limit, where libp2p's codec parses
//! the truncated text and reports a JSON syntax error; and a stream that ends before any
//! answer says so. The requester only ever sees the second: a responder that cannot read a
//! request closes the stream without answering, since request-response has no way to answer
//! a request it could not decode.

use std::{io, marker::PhantomData};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};
use serde::{Serialize, de::DeserializeOwned};

/// Reads and writes `Req` and `Resp` as JSON, each side read up to its own limit.
pub(crate) struct JsonCodec<Req, Resp> {
    request_limit: usize,
    response_limit: usize,
    messages: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> JsonCodec<Req, Resp> {
    /// A codec that reads requests of at most `request_limit` bytes and responses of at most
    /// `response_limit` bytes.
    pub(crate) fn new(request_limit: usize, response_limit: usize) -> Self {
        Self { request_limit, response_limit, messages: PhantomData }
    }
}

// By hand: a derive would ask `Req` and `Resp` to be `Clone`.
impl<Req, Resp> Clone for JsonCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.request_limit, self.response_limit)
    }
}

impl<Req, Resp> request_response::Codec for JsonCodec<Req, Resp>
where
    Req: Send + Serialize + DeserializeOwned,
    Resp: Send + Serialize + DeserializeOwned,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_json(io, self.request_limit, "request").await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_json(io, self.response_limit, "response").await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&serde_json::to_vec(&req)?).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        resp: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&serde_json::to_vec(&resp)?).await
    }
}

/// One JSON message of at most `limit` bytes, read to the end of the stream.
async fn read_json<T, M>(io: &mut T, limit: usize, what: &str) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: DeserializeOwned,
{
    let mut bytes = Vec::new();
    // One byte more than the limit tells an oversized message from one of exactly the
    // limit, without waiting for the rest of it.
    io.take(limit as u64 + 1).read_to_end(&mut bytes).await?;
    if bytes.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the {what} is over the {limit}-byte limit"),
        ));
    }
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the stream ended without a {what} (the peer closes it without answering a \
                 request it cannot read)"
            ),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("invalid {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use gpuflow_protocol::{RentalRequest, RentalResponse};
    use request_response::Codec as _;

    use super::*;

    fn codec() -> JsonCodec<RentalRequest, RentalResponse> {
        JsonCodec::new(64, 1024)
    }

    fn protocol() -> StreamProtocol {
        StreamProtocol::new("/test/1")
    }

    async fn read_request(bytes: Vec<u8>) -> io::Result<RentalRequest> {
        codec().read_request(&protocol(), &mut Cursor::new(bytes)).await
    }

    #[tokio::test]
    async fn a_request_of_the_limit_is_read_and_one_byte_more_names_the_limit() {
        let status = br#"{"type":"status","rental_id":1}"#.to_vec();
        let mut at_limit = status.clone();
        at_limit.resize(64, b' ');
        assert_eq!(read_request(at_limit).await.unwrap(), RentalRequest::Status { rental_id: 1 });
        let mut over = status;
        over.resize(65, b' ');
        let error = read_request(over).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("over the 64-byte limit"), "{error}");
    }

    #[tokio::test]
    async fn an_oversized_request_fails_before_the_sender_stops() {
        // The sender never ends its side: the reader must give up at limit + 1 bytes, not
        // wait for the end of the stream.
        let mut endless = Cursor::new(vec![b'{'; 65]).chain(futures::io::repeat(b' '));
        let (mut codec, protocol) = (codec(), protocol());
        let read = codec.read_request(&protocol, &mut endless);
        let error = tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .expect("no waiting for the end of the stream")
            .unwrap_err();
        assert!(error.to_string().contains("64-byte limit"), "{error}");
    }

    #[tokio::test]
    async fn a_stream_closed_without_an_answer_says_so() {
        let mut empty = Cursor::new(Vec::new());
        let error = codec().read_response(&protocol(), &mut empty).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(error.to_string().contains("without a response"), "{error}");
    }
}
