//! The random source foca is given: rand 0.9's `StdRng` behind the rand 0.10 core traits
//! that foca 2 is generic over.

use std::convert::Infallible;

use rand::rngs::StdRng;

/// rand 0.9's `StdRng` behind the rand 0.10 core traits foca 2 is generic over.
pub(super) struct FocaRng(pub(super) StdRng);

impl rand_core::TryRng for FocaRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand::RngCore::next_u32(&mut self.0))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand::RngCore::next_u64(&mut self.0))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::RngCore::fill_bytes(&mut self.0, dst);
        Ok(())
    }
}
