//! Deterministic randomness addressed by `(seed, entity, index)`.
//!
//! Every record is generated from its own random stream, seeded by hashing the generator seed,
//! the entity and the record's index. So any record (and, above all, any record id) can be
//! recomputed on its own: a contact names its parent account by drawing an index and hashing
//! it, without a table of generated ids. The mixing is SplitMix64's finalizer and the stream is
//! SplitMix64, both written out here, so the output does not depend on the platform or on the
//! `rand` crate's choice of small RNG; `rand` supplies only the sampling helpers.

use crmsync_model::RecordId;
use rand::RngCore;

use crate::SampleEntity;

/// Independent streams derived from the same `(seed, entity, index)`.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    IdHigh = 1,
    IdLow = 2,
    Row = 3,
    /// The company behind an account, also read by its contacts and opportunities.
    Company = 4,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijective, well-avalanching mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable tag per entity (FNV-1a of its logical name).
fn entity_tag(entity: SampleEntity) -> u64 {
    entity.logical_name().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn key(seed: u64, entity: SampleEntity, index: u64, stream: Stream) -> u64 {
    let mut h = mix(seed.wrapping_add(GOLDEN_GAMMA));
    h = mix(h ^ entity_tag(entity));
    h = mix(h ^ index.wrapping_mul(GOLDEN_GAMMA));
    mix(h ^ (stream as u64).wrapping_mul(0xd6e8_feb8_6659_fd93))
}

/// The id of record `index` of `entity`: a random-looking version 4 GUID.
pub(crate) fn record_id(seed: u64, entity: SampleEntity, index: u64) -> RecordId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&key(seed, entity, index, Stream::IdHigh).to_be_bytes());
    bytes[8..].copy_from_slice(&key(seed, entity, index, Stream::IdLow).to_be_bytes());
    RecordId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// SplitMix64 as a [`RngCore`], seeded per record.
pub(crate) struct RecordRng {
    state: u64,
}

impl RecordRng {
    pub(crate) fn new(seed: u64, entity: SampleEntity, index: u64, stream: Stream) -> Self {
        Self {
            state: key(seed, entity, index, stream),
        }
    }
}

impl RngCore for RecordRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand::rand_core::impls::fill_bytes_via_next(self, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_version_4_and_depend_on_seed_entity_and_index() {
        let id = record_id(7, SampleEntity::Account, 0);
        assert_eq!(id.as_uuid().get_version_num(), 4);
        assert_eq!(id, record_id(7, SampleEntity::Account, 0));
        assert_ne!(id, record_id(8, SampleEntity::Account, 0));
        assert_ne!(id, record_id(7, SampleEntity::Contact, 0));
        assert_ne!(id, record_id(7, SampleEntity::Account, 1));
    }

    #[test]
    fn record_ids_do_not_collide_over_many_indexes() {
        let mut seen = std::collections::HashSet::new();
        for entity in SampleEntity::ALL {
            for index in 0..20_000 {
                assert!(seen.insert(record_id(1, entity, index)), "{entity} {index}");
            }
        }
    }

    #[test]
    fn the_record_stream_is_fixed_for_a_given_key() {
        // Pinned so that a change of algorithm, which would change every generated org, is seen.
        let mut rng = RecordRng { state: 0 };
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}
