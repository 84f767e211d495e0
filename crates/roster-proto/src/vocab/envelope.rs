//! Mail: the message a mailbox holds (vocabulary shared by the store's process table and
//! the API).

use serde::de::DeserializeOwned;

use crate::vocab::error::RecvError;
use crate::vocab::meta::Meta;
use crate::vocab::pid::Pid;

/// A message in a mailbox: the sender (if any) and the MessagePack payload.
///
/// One encoding is shared by every local receiver of a dispatch.
#[derive(Debug, Clone)]
pub struct Envelope {
    from: Option<Pid>,
    payload: Meta,
}

impl Envelope {
    /// A message from `from` (if it came from a process) with its encoded payload.
    pub fn new(from: Option<Pid>, payload: Meta) -> Self {
        Self { from, payload }
    }

    /// The sending process, if the message was sent by one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let (a, mut b) = (node.new_process(), node.new_process());
    /// a.send(b.pid(), &"hi").unwrap();
    /// assert_eq!(b.recv_envelope().await.unwrap().from(), Some(a.pid()));
    /// # }
    /// ```
    pub fn from(&self) -> Option<Pid> {
        self.from
    }

    /// Decodes the payload.
    ///
    /// # Errors
    ///
    /// [`RecvError::Decode`] when the payload is not a `T`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.new_process();
    /// node.send(p.pid(), &7u32).unwrap();
    /// assert_eq!(p.recv_envelope().await.unwrap().decode::<u32>().unwrap(), 7);
    /// # }
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.payload.decode().map_err(|e| RecvError::Decode {
            from: self.from,
            reason: e.to_string(),
        })
    }

    /// The raw MessagePack payload.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = roster::Node::builder().start().unwrap();
    /// let mut p = node.new_process();
    /// node.send(p.pid(), &()).unwrap();
    /// assert_eq!(p.recv_envelope().await.unwrap().payload(), &[0xc0]);
    /// # }
    /// ```
    pub fn payload(&self) -> &[u8] {
        self.payload.as_bytes()
    }
}
