//! `paved.audit.v1.AuditService`.

use crate::log::{
    append::Log,
    query::Asked,
    read::{ReadError, Signed},
};
use crate::schema::AuditEntries;
use paved_grpc::status;
use paved_proto::audit::v1::{
    Checkpoint, Entry, EraseSubjectRequest, EraseSubjectResponse, GetCheckpointRequest, GetCheckpointResponse, GetConsistencyProofRequest,
    GetConsistencyProofResponse, GetInclusionProofRequest, GetInclusionProofResponse, GetLogKeyRequest, GetLogKeyResponse,
    ListCheckpointsRequest, ListCheckpointsResponse, ListEntriesRequest, ListEntriesResponse, ListLogEntriesRequest,
    ListLogEntriesResponse, ProvenEntry, QueryLogRequest, QueryLogResponse, RotateLogKeyRequest, RotateLogKeyResponse,
    audit_service_server::{AuditService, AuditServiceServer},
    get_inclusion_proof_request::Leaf,
};
use paved_proto::timestamp_from_millis;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, QueryResult,
    sea_query::{Order, Query},
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub fn server(db: DatabaseConnection, log: Arc<Log>) -> AuditServiceServer<Api> {
    AuditServiceServer::new(Api { db, log })
}

pub struct Api {
    db: DatabaseConnection,
    log: Arc<Log>,
}

/// Entries a ListLogEntries call returns at most.
const MAX_ENTRIES: u32 = 1_000;

impl From<ReadError> for Status {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::OutOfRange { what, field, size } => status::out_of_range(
                "BEYOND_LOG",
                format!("{what} is beyond the log, which has {size} entries"),
                field,
                &[("size", &size.to_string())],
            ),
            ReadError::NoCheckpoint => status::unavailable("NO_CHECKPOINT", "the log has signed no checkpoint yet; try again in a second"),
            ReadError::UnknownEvent(id) => status::not_found("EVENT_NOT_LOGGED", format!("event {id} is not in the log (yet)")),
            ReadError::Invalid(field, why) => status::invalid_argument("INVALID_RANGE", why.clone(), [(field.to_string(), why)]),
            ReadError::NotYetCovered(id) => status::unavailable(
                "NOT_YET_CHECKPOINTED",
                format!("event {id} is in the log but no checkpoint covers it yet; try again in a second"),
            ),
            ReadError::Db(e) => status::storage(&e),
            ReadError::Tree(e) => status::internal(&e),
        }
    }
}

fn checkpoint(signed: Signed) -> Checkpoint {
    Checkpoint { note: signed.note, size: signed.size, root_hash: signed.root.0.to_vec() }
}

#[tonic::async_trait]
impl AuditService for Api {
    async fn get_log_key(&self, _: Request<GetLogKeyRequest>) -> Result<Response<GetLogKeyResponse>, Status> {
        let keys = self.log.keys();
        let key = keys.first().ok_or_else(|| status::unavailable("LOG_KEY_LOADING", "the log's key is not loaded yet; try again"))?;
        let signing: Vec<String> = keys.iter().map(|k| k.verifier_key()).collect();
        let all = crate::log::store::all_keys(self.log.db()).await.map_err(|e| status::storage(&e))?;
        let retired = all.into_iter().map(|(k, _)| k).filter(|k| !signing.contains(k)).collect();
        Ok(Response::new(GetLogKeyResponse { origin: key.name().to_string(), verifier_keys: signing, retired_keys: retired }))
    }

    async fn rotate_log_key(&self, request: Request<RotateLogKeyRequest>) -> Result<Response<RotateLogKeyResponse>, Status> {
        let req = request.into_inner();
        #[allow(deprecated)] // read when `overlap` is unset
        let seconds = paved_proto::seconds_or(req.overlap.as_ref(), i64::try_from(req.overlap_seconds).unwrap_or(i64::MAX));
        let seconds: u64 = match seconds {
            0 => 86_400,
            s @ 1..=2_592_000 => s.unsigned_abs(),
            s => {
                return Err(status::invalid_argument(
                    "OVERLAP",
                    "the overlap is 1 s to 30 days",
                    [("overlap".to_string(), format!("{s} s is not between 1 and 2592000"))],
                ));
            }
        };
        let started = chrono::Utc::now().timestamp_millis();
        let verifier_key =
            self.log.rotate(std::time::Duration::from_secs(seconds)).await.map_err(|e| status::internal(&format!("{e:#}")))?;
        let retire = started + i64::try_from(seconds * 1000).unwrap_or(i64::MAX);
        Ok(Response::new(RotateLogKeyResponse { verifier_key, retire_time: Some(timestamp_from_millis(retire)) }))
    }

    async fn get_checkpoint(&self, _: Request<GetCheckpointRequest>) -> Result<Response<GetCheckpointResponse>, Status> {
        Ok(Response::new(GetCheckpointResponse { checkpoint: Some(checkpoint(self.log.checkpoint().await?)) }))
    }

    async fn get_inclusion_proof(&self, request: Request<GetInclusionProofRequest>) -> Result<Response<GetInclusionProofResponse>, Status> {
        let req = request.into_inner();
        let (index, event_id) = match req.leaf {
            Some(Leaf::Index(index)) => (index, None),
            Some(Leaf::EventId(id)) => (self.log.index_of(&id).await?, Some(id)),
            None => {
                return Err(status::invalid_argument(
                    "LEAF_MISSING",
                    "name the leaf: index or event_id",
                    [("leaf".to_string(), "one of index or event_id is required".to_string())],
                ));
            }
        };
        let signed = if req.tree_size == 0 { Some(self.log.checkpoint().await?) } else { None };
        let tree_size = signed.as_ref().map_or(req.tree_size, |s| s.size);
        if let Some(id) = event_id.filter(|_| signed.is_some() && index >= tree_size) {
            return Err(ReadError::NotYetCovered(id).into());
        }
        let hashes = self.log.inclusion(index, tree_size).await?;
        let entry = self.log.entries(index, 1).await.map_err(|e| status::storage(&e))?.into_iter().next();
        let entry = entry.ok_or_else(|| status::internal(&format!("leaf {index} is in the tree but not stored")))?;
        Ok(Response::new(GetInclusionProofResponse {
            index,
            tree_size,
            hashes: hashes.iter().map(|h| h.0.to_vec()).collect(),
            entry,
            checkpoint: signed.map(checkpoint),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        let req = request.into_inner();
        let to_size = if req.to_size == 0 { self.log.checkpoint().await?.size } else { req.to_size };
        let hashes = self.log.consistency(req.from_size, to_size).await?;
        Ok(Response::new(GetConsistencyProofResponse {
            from_size: req.from_size,
            to_size,
            hashes: hashes.iter().map(|h| h.0.to_vec()).collect(),
        }))
    }

    async fn list_checkpoints(&self, request: Request<ListCheckpointsRequest>) -> Result<Response<ListCheckpointsResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let checkpoints: Vec<Checkpoint> = self.log.checkpoints(offset, size).await?.into_iter().map(checkpoint).collect();
        let next_page_token = status::next_page_token(offset, size, checkpoints.len());
        Ok(Response::new(ListCheckpointsResponse { checkpoints, next_page_token }))
    }

    async fn list_log_entries(&self, request: Request<ListLogEntriesRequest>) -> Result<Response<ListLogEntriesResponse>, Status> {
        let req = request.into_inner();
        if req.count > MAX_ENTRIES {
            return Err(status::invalid_argument(
                "TOO_MANY",
                format!("count is at most {MAX_ENTRIES}"),
                [("count".to_string(), format!("{} is over {MAX_ENTRIES}", req.count))],
            ));
        }
        let size = self.log.size().await.map_err(|e| status::storage(&e))?;
        if req.start > size {
            return Err(ReadError::OutOfRange { what: format!("start {}", req.start), field: "start", size }.into());
        }
        let count = if req.count == 0 { 256 } else { req.count };
        let entries = self.log.entries(req.start, u64::from(count)).await.map_err(|e| status::storage(&e))?;
        Ok(Response::new(ListLogEntriesResponse { start: req.start, entries }))
    }

    async fn query_log(&self, request: Request<QueryLogRequest>) -> Result<Response<QueryLogResponse>, Status> {
        let req = request.into_inner();
        let asked = match (req.workload.as_str(), req.environment.as_str(), req.actor.as_str()) {
            (name, environment, "") if !name.is_empty() && !environment.is_empty() => Asked::Workload { environment, name },
            ("", "", actor) if !actor.is_empty() => Asked::Actor(actor),
            _ => {
                return Err(status::invalid_argument(
                    "QUERY_SUBJECT",
                    "ask for one workload (workload and environment) or one actor",
                    [("workload".to_string(), "set workload and environment, or actor, not both".to_string())],
                ));
            }
        };
        // The service's paging (its checks and token, a larger page treated
        // as the largest, as every List does), with this call's own default:
        // an answer carries a proof per entry.
        let (size, from) = status::page(req.page_size, &req.page_token)?;
        let limit = if req.page_size == 0 { 256 } else { size.min(u64::from(MAX_ENTRIES)) };
        let window =
            (req.since.as_ref().map(paved_proto::millis_from_timestamp), req.until.as_ref().map(paved_proto::millis_from_timestamp));
        let answer = self.log.query(asked, window, from, limit).await?;
        Ok(Response::new(QueryLogResponse {
            checkpoint: Some(checkpoint(answer.checkpoint)),
            entries: answer
                .entries
                .into_iter()
                .map(|e| ProvenEntry { index: e.index, entry: e.entry, hashes: e.hashes.iter().map(|h| h.0.to_vec()).collect() })
                .collect(),
            chain: answer.chain,
            salt: answer.salt.unwrap_or_default(),
            next_page_token: answer.next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }

    async fn erase_subject(&self, request: Request<EraseSubjectRequest>) -> Result<Response<EraseSubjectResponse>, Status> {
        let subject = request.into_inner().subject;
        if !crate::log::entry::is_person(&subject) {
            return Err(status::invalid_argument(
                "NOT_A_PERSON",
                format!("{subject:?} is not a person's name: workloads, services and `paved` are never committed, so never erased"),
                [("subject".to_string(), "a person's token subject, e.g. dora".to_string())],
            ));
        }
        let erased = self.log.erase(&subject).await?.ok_or_else(|| {
            status::not_found("SUBJECT_UNKNOWN", format!("the log holds no salt for {subject}: never seen, or erased already"))
        })?;
        Ok(Response::new(EraseSubjectResponse { commitment: erased.commitment, entries: erased.entries }))
    }

    async fn list_entries(&self, request: Request<ListEntriesRequest>) -> Result<Response<ListEntriesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let query = Query::select()
            .columns([
                AuditEntries::Sequence,
                AuditEntries::EventId,
                AuditEntries::Source,
                AuditEntries::EventType,
                AuditEntries::Subject,
                AuditEntries::EventTimeMs,
                AuditEntries::ReceiveTimeMs,
                AuditEntries::Envelope,
            ])
            .from(AuditEntries::Table)
            .order_by(AuditEntries::Sequence, Order::Asc)
            .limit(size)
            .offset(offset)
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(|e| status::storage(&e))?;
        let entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>().map_err(|e| status::internal(&e))?;
        let next_page_token = status::next_page_token(offset, size, entries.len());
        Ok(Response::new(ListEntriesResponse { entries, next_page_token }))
    }
}

fn entry(row: &QueryResult) -> Result<Entry, sea_orm::DbErr> {
    let event_time: Option<i64> = row.try_get("", "event_time_ms")?;
    Ok(Entry {
        sequence: row.try_get("", "sequence")?,
        event_id: row.try_get("", "event_id")?,
        source: row.try_get("", "source")?,
        r#type: row.try_get("", "event_type")?,
        subject: row.try_get("", "subject")?,
        event_time: event_time.map(timestamp_from_millis),
        receive_time: Some(timestamp_from_millis(row.try_get("", "receive_time_ms")?)),
        envelope: row.try_get("", "envelope")?,
    })
}
