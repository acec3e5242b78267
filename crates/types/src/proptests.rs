//! Property tests for the codec and signatures.

use crate::{
    AccountId, Amount, ChainId, ContractId, Hash, PublicKey, SecretKey, ShardId,
    block::{
        BlockHeader, ChainRef, Crosslink, CrosslinkError, DestinationBatch, IncomingBatch,
        ShardBlock,
    },
    config::{ConfigUpdate, ShardConfig},
    merkle,
    prsm::{PrsmEvent, PrsmEventKind},
    receipt::{CallId, Receipt, ReceiptKind},
    tx::{Action, SignedTransaction, Transaction},
};
use commonware_codec::{DecodeExt, Encode};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn account() -> impl Strategy<Value = AccountId> {
    "[a-z0-9_-]{2,64}".prop_map(|s| AccountId::new(s).unwrap())
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        any::<u128>().prop_map(Amount),
        (0u128..1_000_000).prop_map(Amount)
    ]
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn contract() -> impl Strategy<Value = ContractId> {
    hash().prop_map(|h| ContractId::from_deploy(&h))
}

fn short() -> impl Strategy<Value = String> {
    "[ -~]{0,20}"
}

fn config_update() -> impl Strategy<Value = ConfigUpdate> {
    (
        proptest::option::of(any::<bool>()),
        proptest::option::of(1u64..20),
        proptest::option::of(1u64..5000),
        proptest::option::of(0.01f64..1.0),
        proptest::option::of(1u64..100),
        proptest::option::of(1u64..1000),
    )
        .prop_map(|(a, n, t, r, f, b)| ConfigUpdate {
            async_crosslinks_enabled: a,
            num_shards: n,
            batch_timeout_ms: t,
            rebalance_threshold: r,
            crosslink_frequency: f,
            batch_size: b,
            ..Default::default()
        })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (account(), any::<[u8; 32]>(), amount()).prop_map(|(account, pk, amount)| {
            Action::CreateAccount {
                account,
                public_key: PublicKey(pk),
                amount,
            }
        }),
        (account(), amount(), any::<u8>()).prop_map(|(to, amount, priority)| Action::Transfer {
            to,
            amount,
            priority
        }),
        (
            "[a-zA-Z]{1,20}",
            "0x[0-9a-f]{1,64}",
            proptest::collection::btree_map("[a-z_]{1,10}", short(), 0..5),
            any::<u64>()
        )
            .prop_map(|(name, code_hash, initial_state, gas_budget)| {
                Action::DeployContract {
                    name,
                    code_hash,
                    initial_state,
                    gas_budget,
                }
            }),
        (
            contract(),
            "[a-z_]{1,12}",
            proptest::collection::vec(short(), 0..8),
            any::<u64>(),
            amount()
        )
            .prop_map(
                |(contract, method, args, gas_limit, amount)| Action::CallContract {
                    contract,
                    method,
                    args,
                    gas_limit,
                    amount
                }
            ),
        ("[a-z_]{1,12}", short(), any::<bool>(), any::<bool>()).prop_map(|(action, data, a, c)| {
            Action::Proposal {
                action,
                data,
                affects_multiple_shards: a,
                coordination_required: c,
            }
        }),
        any::<u32>().prop_map(|s| Action::Flush { shard: ShardId(s) }),
        config_update().prop_map(|update| Action::ConfigChange { update }),
    ]
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        "[a-z0-9-]{1,32}",
        account(),
        any::<u64>(),
        amount(),
        action(),
    )
        .prop_map(|(c, signer, nonce, fee, action)| Transaction {
            chain_id: ChainId::new(c).unwrap(),
            signer,
            nonce,
            fee,
            action,
        })
}

fn signed() -> impl Strategy<Value = SignedTransaction> {
    (transaction(), any::<[u8; 32]>()).prop_map(|(tx, seed)| tx.sign(&SecretKey::from_seed(seed)))
}

fn receipt_kind() -> impl Strategy<Value = ReceiptKind> {
    prop_oneof![
        Just(ReceiptKind::Transfer),
        any::<[u8; 32]>().prop_map(|pk| ReceiptKind::CreateAccount {
            public_key: PublicKey(pk)
        }),
        (
            any::<[u8; 16]>(),
            contract(),
            "[a-z]{1,10}",
            proptest::collection::vec(short(), 0..4),
            any::<u64>()
        )
            .prop_map(
                |(c, contract, method, args, gas_limit)| ReceiptKind::ContractCall {
                    call_id: CallId(c),
                    contract,
                    method,
                    args,
                    gas_limit
                }
            ),
        (any::<[u8; 16]>(), any::<bool>(), short()).prop_map(|(c, success, output)| {
            ReceiptKind::CallResult {
                call_id: CallId(c),
                success,
                output,
            }
        }),
        short().prop_map(|reason| ReceiptKind::Refund { reason }),
        (
            contract(),
            short(),
            short(),
            proptest::collection::btree_map(short(), short(), 0..4),
            any::<u64>()
        )
            .prop_map(|(contract, name, code_hash, initial_state, gas_budget)| {
                ReceiptKind::DeployContract {
                    contract,
                    name,
                    code_hash,
                    initial_state,
                    gas_budget,
                }
            }),
        ("[a-z_]{1,20}", short())
            .prop_map(|(action, data)| ReceiptKind::ProposalRequest { action, data }),
        (any::<bool>(), short(), any::<u64>()).prop_map(|(accepted, reason, height)| {
            ReceiptKind::ProposalVote {
                accepted,
                reason,
                height,
            }
        }),
        (proptest::option::of(any::<[u8; 32]>()), any::<u64>()).prop_map(|(pk, nonce)| {
            ReceiptKind::Migrate {
                public_key: pk.map(PublicKey),
                nonce,
            }
        }),
    ]
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        receipt_kind(),
        amount(),
        any::<u8>(),
        hash(),
        account(),
        account(),
    )
        .prop_map(
            |(s, d, seq, kind, amount, priority, origin_tx, sender, recipient)| Receipt {
                src: ShardId(s),
                dst: ShardId(d),
                seq,
                kind,
                amount,
                priority,
                origin_tx,
                sender,
                recipient,
            },
        )
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (
        prop_oneof![
            Just(ChainRef::Beacon),
            any::<u32>().prop_map(|s| ChainRef::Shard(ShardId(s)))
        ],
        any::<(u64, u64, u64, u64)>(),
        any::<[u8; 32]>(),
        proptest::array::uniform6(hash()),
    )
        .prop_map(
            |(chain, (epoch, height, timestamp_ms, beacon_height), pk, h)| BlockHeader {
                chain,
                epoch,
                height,
                parent: h[0],
                timestamp_ms,
                proposer: PublicKey(pk),
                body_root: h[1],
                state_root: h[2],
                receipts_root: h[3],
                batch_txs_root: h[4],
                prsm_root: h[5],
                beacon_height,
            },
        )
}

fn dest() -> impl Strategy<Value = DestinationBatch> {
    (any::<u32>(), any::<u64>(), any::<u32>(), hash()).prop_map(|(d, first_seq, count, root)| {
        DestinationBatch {
            dst: ShardId(d),
            first_seq,
            count,
            root,
        }
    })
}

fn block() -> impl Strategy<Value = ShardBlock> {
    (
        header(),
        proptest::collection::vec(signed(), 0..4),
        proptest::collection::vec(
            (
                any::<u32>(),
                any::<u64>(),
                dest(),
                proptest::collection::vec(receipt(), 0..3),
                proptest::collection::vec(hash(), 0..5),
            ),
            0..3,
        ),
    )
        .prop_map(|(header, txs, inc)| ShardBlock {
            header,
            txs,
            incoming: inc
                .into_iter()
                .map(|(s, h, destination, receipts, sibs)| IncomingBatch {
                    source: ShardId(s),
                    crosslink_height: h,
                    destination,
                    proof: merkle::MerkleProof {
                        index: 0,
                        leaf_count: 1,
                        siblings: sibs,
                    },
                    receipts,
                })
                .collect(),
        })
}

fn prsm_event() -> impl Strategy<Value = PrsmEvent> {
    (
        any::<u64>(),
        hash(),
        prop_oneof![
            proptest::collection::vec(any::<u32>().prop_map(ShardId), 0..4)
                .prop_map(|targets| PrsmEventKind::Submitted { targets }),
            (any::<u32>(), any::<bool>(), any::<u64>()).prop_map(|(c, accepted, height)| {
                PrsmEventKind::Voted {
                    coordinator: ShardId(c),
                    accepted,
                    height,
                }
            }),
        ],
    )
        .prop_map(|(seq, proposal, kind)| PrsmEvent {
            seq,
            proposal,
            kind,
        })
}

fn crosslink() -> impl Strategy<Value = Crosslink> {
    (
        header(),
        proptest::collection::vec(dest(), 0..5),
        proptest::collection::vec(hash(), 0..10),
        proptest::collection::vec(prsm_event(), 0..4),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(header(), 0..3),
    )
        .prop_map(
            |(header, destinations, batched_txs, prsm_events, certificate, ancestry)| Crosslink {
                header,
                destinations,
                batched_txs,
                prsm_events,
                certificate,
                ancestry,
            },
        )
}

macro_rules! round_trip {
    ($name:ident, $strat:expr, $t:ty) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]
            #[test]
            fn $name(v in $strat) {
                let bytes = v.encode();
                prop_assert_eq!(bytes.len(), commonware_codec::EncodeSize::encode_size(&v));
                let back = <$t>::decode(bytes.clone()).unwrap();
                prop_assert_eq!(&back, &v);
                // Canonical: re-encoding gives the same bytes.
                prop_assert_eq!(back.encode(), bytes);
                // JSON round trip for the API.
                let json = serde_json::to_string(&v).unwrap();
                let from_json: $t = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(from_json, v);
            }
        }
    };
}

round_trip!(signed_tx_round_trip, signed(), SignedTransaction);
round_trip!(receipt_round_trip, receipt(), Receipt);
round_trip!(block_round_trip, block(), ShardBlock);
round_trip!(crosslink_round_trip, crosslink(), Crosslink);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Decoding arbitrary bytes never panics (errors are fine).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SignedTransaction::decode(bytes.as_slice().to_vec());
        let _ = Transaction::decode(bytes.as_slice().to_vec());
        let _ = Receipt::decode(bytes.as_slice().to_vec());
        let _ = ShardBlock::decode(bytes.as_slice().to_vec());
        let _ = Crosslink::decode(bytes.as_slice().to_vec());
        let _ = BlockHeader::decode(bytes.as_slice().to_vec());
        let _ = ShardConfig::decode(bytes.as_slice().to_vec());
        let _ = merkle::MerkleProof::decode(bytes.as_slice().to_vec());
    }

    /// Corrupting an encoding never panics, and what still decodes re-encodes canonically.
    #[test]
    fn corrupted_encodings_are_rejected_or_canonical(tx in signed(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = tx.encode().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(t) = SignedTransaction::decode(bytes.clone()) {
            prop_assert_eq!(t.encode().to_vec(), bytes);
        }
    }

    /// Changing any signed field (any bit of the signed encoding, as long as it still decodes
    /// to a different transaction) invalidates the signature.
    #[test]
    fn changing_a_signed_field_breaks_the_signature(tx in signed(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        prop_assert!(tx.verify_signature().is_ok());
        let mut bytes = tx.tx.encode().to_vec();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(changed) = Transaction::decode(bytes) {
            prop_assert_ne!(&changed, &tx.tx);
            let forged = SignedTransaction { tx: changed, public_key: tx.public_key, signature: tx.signature };
            prop_assert!(forged.verify_signature().is_err());
        }
    }

    /// A signature under one key never verifies under another.
    #[test]
    fn other_key_fails(tx in signed(), seed in any::<[u8; 32]>()) {
        let other = SecretKey::from_seed(seed).public_key();
        prop_assume!(other != tx.public_key);
        let forged = SignedTransaction { public_key: other, ..tx };
        prop_assert!(forged.verify_signature().is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `verify_all` (one batch verification, one by one only on failure) accepts exactly the
    /// transactions that verify on their own, in order, and hands back the others unchanged.
    #[test]
    fn verify_all_agrees_with_single_verification(
        txs in proptest::collection::vec((signed(), any::<bool>(), any::<u8>()), 0..12),
    ) {
        let input: Vec<SignedTransaction> = txs
            .into_iter()
            .map(|(mut tx, forge, byte)| {
                if forge {
                    // Another nonce under the same signature: must not verify.
                    tx.tx.nonce = tx.tx.nonce.wrapping_add(1 + u64::from(byte));
                }
                tx
            })
            .collect();
        let expected: Vec<bool> = input.iter().map(|t| t.verify_signature().is_ok()).collect();
        let out = crate::verify_all(input.clone());
        prop_assert_eq!(out.len(), input.len());
        for ((r, want), orig) in out.into_iter().zip(expected).zip(&input) {
            match r {
                Ok(v) => {
                    prop_assert!(want);
                    prop_assert_eq!(v.get(), orig);
                }
                Err((tx, _)) => {
                    prop_assert!(!want);
                    prop_assert_eq!(&tx, orig);
                }
            }
        }
    }
}

#[test]
fn oversized_lengths_are_rejected_without_allocating() {
    // A block claiming u32::MAX transactions must fail fast.
    let h = BlockHeader {
        chain: ChainRef::Shard(ShardId(0)),
        epoch: 0,
        height: 1,
        parent: Hash::ZERO,
        timestamp_ms: 0,
        proposer: PublicKey([0; 32]),
        body_root: Hash::ZERO,
        state_root: Hash::ZERO,
        receipts_root: Hash::ZERO,
        batch_txs_root: Hash::ZERO,
        prsm_root: Hash::ZERO,
        beacon_height: 0,
    };
    let mut bytes = h.encode().to_vec();
    commonware_codec::Write::write(&(u32::MAX as usize), &mut bytes);
    assert!(ShardBlock::decode(bytes).is_err());
    let big: BTreeMap<String, String> = (0..65)
        .map(|i| (format!("k{i:03}"), String::new()))
        .collect();
    let tx = Transaction {
        chain_id: ChainId::new("t").unwrap(),
        signer: AccountId::new("alice").unwrap(),
        nonce: 0,
        fee: Amount(0),
        action: Action::DeployContract {
            name: "x".into(),
            code_hash: "0x1".into(),
            initial_state: big,
            gas_budget: 1,
        },
    };
    assert!(
        Transaction::decode(tx.encode()).is_err(),
        "65 initial-state entries exceed the limit"
    );
    assert!(tx.action.check_limits().is_err());
}

#[test]
fn crosslink_content_check() {
    let dests = vec![
        DestinationBatch {
            dst: ShardId(1),
            first_seq: 0,
            count: 2,
            root: Hash::sha256(b"a"),
        },
        DestinationBatch {
            dst: ShardId(3),
            first_seq: 5,
            count: 1,
            root: Hash::sha256(b"b"),
        },
    ];
    let txs = vec![Hash::sha256(b"t1"), Hash::sha256(b"t2")];
    let events = vec![
        PrsmEvent {
            seq: 7,
            proposal: Hash::sha256(b"p"),
            kind: PrsmEventKind::Submitted {
                targets: vec![ShardId(0), ShardId(1)],
            },
        },
        PrsmEvent {
            seq: 8,
            proposal: Hash::sha256(b"q"),
            kind: PrsmEventKind::Voted {
                coordinator: ShardId(2),
                accepted: true,
                height: 3,
            },
        },
    ];
    let header = BlockHeader {
        chain: ChainRef::Shard(ShardId(0)),
        epoch: 0,
        height: 1234,
        parent: Hash::ZERO,
        timestamp_ms: 0,
        proposer: PublicKey([0; 32]),
        body_root: Hash::ZERO,
        state_root: Hash::ZERO,
        receipts_root: Crosslink::destinations_root(&dests),
        batch_txs_root: Crosslink::batch_txs_root(&txs),
        prsm_root: PrsmEvent::root(&events),
        beacon_height: 0,
    };
    let cl = Crosslink {
        header,
        destinations: dests,
        batched_txs: txs,
        prsm_events: events,
        certificate: vec![],
        ancestry: vec![],
    };
    assert_eq!(cl.id(), "crosslink_0_1234_batch");
    assert_eq!(cl.certified_hash(), cl.block_hash());
    cl.check_content().unwrap();
    for i in 0..2 {
        let p = cl.prove_destination(i).unwrap();
        assert!(p.verify(&cl.destinations[i].leaf_hash(), &cl.header.receipts_root));
    }
    let mut bad = cl.clone();
    bad.destinations.swap(0, 1);
    assert!(bad.check_content().is_err());
    let mut bad = cl.clone();
    bad.batched_txs.pop();
    assert!(bad.check_content().is_err());
    // PRSM events: each is committed by the header's root, and seqs never skip.
    let mut bad = cl.clone();
    bad.prsm_events.pop();
    assert_eq!(bad.check_content(), Err(CrosslinkError::PrsmEvents));
    let mut bad = cl.clone();
    if let PrsmEventKind::Voted { accepted, .. } = &mut bad.prsm_events[1].kind {
        *accepted = false;
    }
    assert_eq!(bad.check_content(), Err(CrosslinkError::PrsmEvents));
    let mut bad = cl.clone();
    bad.prsm_events[1].seq = 9;
    bad.header.prsm_root = PrsmEvent::root(&bad.prsm_events);
    assert_eq!(bad.check_content(), Err(CrosslinkError::PrsmEvents));

    // Ancestry: a chain of same-epoch children proves the header; anything else does not.
    let child = |p: &BlockHeader| BlockHeader {
        height: p.height + 1,
        parent: p.hash(),
        timestamp_ms: p.timestamp_ms + 1,
        ..p.clone()
    };
    let mut via = cl.clone();
    let c1 = child(&cl.header);
    let c2 = child(&c1);
    via.ancestry = vec![c1.clone(), c2.clone()];
    via.check_content().unwrap();
    assert_eq!(via.certified_hash(), c2.hash());
    let mut bad = via.clone();
    bad.ancestry = vec![c2.clone()];
    assert_eq!(bad.check_content(), Err(CrosslinkError::Ancestry));
    let mut bad = via.clone();
    bad.ancestry[1].epoch += 1;
    assert_eq!(bad.check_content(), Err(CrosslinkError::Ancestry));
}
