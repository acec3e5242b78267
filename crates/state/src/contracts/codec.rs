//! The canonical binary encoding of contracts (what the state root commits to).
//!
//! Fields in declaration order; strings are varint length + UTF-8; the state map is a
//! varint count then `(key, value)` pairs in strictly ascending key order; the call history
//! is a varint count then the calls; an optional result is a `bool` then the string.
//! Decoding enforces every limit and the key order, so each contract has exactly one
//! encoding and hostile bytes never allocate past the limits.

use super::{CallStatus, CrossShardCall, MAX_CALL_HISTORY, MAX_CODE_HASH_BYTES, ShardContract};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};
use std::collections::BTreeMap;
use vision_types::{
    AccountId, CallId, ContractId, ShardId,
    codec_util::{read_str, read_vec, str_size, write_str},
    limits,
};

impl Write for CallStatus {
    fn write(&self, buf: &mut impl BufMut) {
        let tag: u8 = match self {
            CallStatus::Pending => 0,
            CallStatus::Executing => 1,
            CallStatus::Completed => 2,
            CallStatus::Failed => 3,
        };
        tag.write(buf);
    }
}

impl EncodeSize for CallStatus {
    fn encode_size(&self) -> usize {
        1
    }
}

impl Read for CallStatus {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read_cfg(buf, &())? {
            0 => CallStatus::Pending,
            1 => CallStatus::Executing,
            2 => CallStatus::Completed,
            3 => CallStatus::Failed,
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }
}

impl Write for CrossShardCall {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.from_shard.write(buf);
        self.to_shard.write(buf);
        self.contract_id.write(buf);
        write_str(&self.method, buf);
        self.args.len().write(buf);
        for a in &self.args {
            write_str(a, buf);
        }
        self.status.write(buf);
        self.result.is_some().write(buf);
        if let Some(r) = &self.result {
            write_str(r, buf);
        }
    }
}

impl EncodeSize for CrossShardCall {
    fn encode_size(&self) -> usize {
        16 + 4
            + 4
            + self.contract_id.encode_size()
            + str_size(&self.method)
            + self.args.len().encode_size()
            + self.args.iter().map(|a| str_size(a)).sum::<usize>()
            + 1
            + 1
            + self.result.as_deref().map_or(0, str_size)
    }
}

impl Read for CrossShardCall {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let id = CallId::read_cfg(buf, &())?;
        let from_shard = ShardId::read_cfg(buf, &())?;
        let to_shard = ShardId::read_cfg(buf, &())?;
        let contract_id = ContractId::read_cfg(buf, &())?;
        let method = read_str(buf, limits::MAX_METHOD_BYTES, "call method")?;
        let n = usize::read_cfg(buf, &RangeCfg::new(0..=limits::MAX_ARGS))?;
        let args = (0..n)
            .map(|_| read_str(buf, limits::MAX_ARG_BYTES, "call argument"))
            .collect::<Result<_, _>>()?;
        let status = CallStatus::read_cfg(buf, &())?;
        let result = if bool::read_cfg(buf, &())? {
            Some(read_str(buf, limits::MAX_RESULT_BYTES, "call result")?)
        } else {
            None
        };
        Ok(CrossShardCall {
            id,
            from_shard,
            to_shard,
            contract_id,
            method,
            args,
            status,
            result,
        })
    }
}

impl Write for ShardContract {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        write_str(&self.name, buf);
        self.owner.write(buf);
        self.primary_shard.write(buf);
        write_str(&self.code_hash, buf);
        self.state.len().write(buf);
        for (k, v) in &self.state {
            write_str(k, buf);
            write_str(v, buf);
        }
        self.cross_shard_calls.write(buf);
        self.gas_budget.write(buf);
        self.created_height.write(buf);
    }
}

impl EncodeSize for ShardContract {
    fn encode_size(&self) -> usize {
        self.id.encode_size()
            + str_size(&self.name)
            + self.owner.encode_size()
            + 4
            + str_size(&self.code_hash)
            + self.state.len().encode_size()
            + self
                .state
                .iter()
                .map(|(k, v)| str_size(k) + str_size(v))
                .sum::<usize>()
            + self.cross_shard_calls.encode_size()
            + 8
            + 8
    }
}

impl Read for ShardContract {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let id = ContractId::read_cfg(buf, &())?;
        let name = read_str(buf, limits::MAX_CONTRACT_NAME_BYTES, "contract name")?;
        let owner = AccountId::read_cfg(buf, &())?;
        let primary_shard = ShardId::read_cfg(buf, &())?;
        let code_hash = read_str(buf, MAX_CODE_HASH_BYTES, "code hash")?;
        let n = usize::read_cfg(buf, &RangeCfg::new(0..=limits::MAX_CONTRACT_STATE_ENTRIES))?;
        let mut state = BTreeMap::new();
        for _ in 0..n {
            let k = read_str(buf, limits::MAX_KEY_BYTES, "state key")?;
            let v = read_str(buf, limits::MAX_VALUE_BYTES, "state value")?;
            if state.last_key_value().is_some_and(|(last, _)| *last >= k) {
                return Err(CodecError::Invalid(
                    "ShardContract",
                    "state keys not strictly ascending",
                ));
            }
            state.insert(k, v);
        }
        let cross_shard_calls = read_vec(buf, MAX_CALL_HISTORY, &())?;
        Ok(ShardContract {
            id,
            name,
            owner,
            primary_shard,
            code_hash,
            state,
            cross_shard_calls,
            gas_budget: u64::read_cfg(buf, &())?,
            created_height: u64::read_cfg(buf, &())?,
        })
    }
}
