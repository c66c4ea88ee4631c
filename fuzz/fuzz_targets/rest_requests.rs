//! The JobManager REST API's request bodies and path parameters: each body type parsed as its
//! handler parses it (`serde_json` into the `fjord_client::api` type), and the trigger-ID
//! checks the handlers run on path segments. A panic is a finding.
#![no_main]

use fjord_client::api::{
    CheckpointTriggerRequest, DisposeSavepointRequest, RescaleRequest, SavepointRequest,
    SubmitJobRequest, validate_checkpoint_trigger_id, validate_trigger_id,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => drop(serde_json::from_slice::<SubmitJobRequest>(body)),
        1 => drop(serde_json::from_slice::<SavepointRequest>(body)),
        2 => drop(serde_json::from_slice::<CheckpointTriggerRequest>(body)),
        3 => drop(serde_json::from_slice::<RescaleRequest>(body)),
        4 => drop(serde_json::from_slice::<DisposeSavepointRequest>(body)),
        _ => {
            let segment = String::from_utf8_lossy(body);
            let _ = validate_trigger_id(&segment);
            let _ = validate_checkpoint_trigger_id(&segment);
        }
    }
});
