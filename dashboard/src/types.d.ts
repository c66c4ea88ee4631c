// The REST API's bodies as the dashboard reads them (see client/openapi.json); for the type
// checker only (`tsc`), never served.

export type JobState = "CREATED" | "RUNNING" | "CANCELLING" | "CANCELED" | "FINISHED" | "FAILED";

export interface JobSummary { id: string; name: string; state: JobState }
export interface JobList { jobs: JobSummary[] }

export interface SubtaskMetrics {
  subtask: number;
  records_in: number;
  records_out: number;
  bytes_in: number;
  bytes_out: number;
  backpressured_ms: number;
  idle_ms: number;
  busy_ms: number;
  input_watermark: number | null;
  output_watermark: number | null;
}

export interface Vertex {
  id: number;
  name: string;
  parallelism: number;
  max_parallelism: number;
  records_in: number;
  records_out: number;
  subtasks: SubtaskMetrics[];
  operators: string[];
}

export interface Edge { source: number; target: number; partitioner: string; side_output: string | null }

export interface JobDetails {
  id: string;
  name: string;
  args: string[];
  state: JobState;
  failure: string | null;
  start_time_ms: number;
  end_time_ms: number | null;
  duration_ms: number;
  restarts: number;
  vertices: Vertex[];
  edges: Edge[];
}

export interface CheckpointInfo {
  id: number;
  path: string;
  completed_at_ms: number;
  size_bytes: number;
  duration_ms: number;
  savepoint: boolean;
}

export interface FailedCheckpointInfo {
  id: number;
  savepoint: boolean;
  triggered_at_ms: number;
  failed_at_ms: number;
  reason: string;
}

export interface VertexAcknowledgements { vertex: number; acknowledged: number; parallelism: number }

export interface PendingCheckpointInfo {
  id: number;
  savepoint: boolean;
  triggered_at_ms: number;
  vertices: VertexAcknowledgements[];
}

export interface CheckpointHistory {
  interval_ms: number | null;
  completed: CheckpointInfo[];
  failed: number;
  failed_history: FailedCheckpointInfo[];
  in_progress: PendingCheckpointInfo[];
}

export interface CheckpointSettings {
  mode: string;
  interval_ms: number | null;
  storage: string | null;
  retained: number | null;
  savepoint_dir: string | null;
}

export interface CheckpointOverview {
  completed: number;
  failed: number;
  savepoints_in_progress: number;
  savepoints_completed: number;
  restarts: number;
  restored_from: string | null;
  latest: string | null;
  settings: CheckpointSettings;
}

export interface JobException {
  timestamp_ms: number;
  message: string;
  operator: string | null;
  subtask: number | null;
  attempt: number;
  terminal: boolean;
}

export interface ExceptionHistory { root_cause: JobException | null; history: JobException[] }

export interface TaskManagerInfo {
  id: string;
  data_address: string;
  version: string;
  state: "REGISTERED" | "LOST";
  slots: number;
  slots_offered: number;
  registered_at_ms: number;
  last_heartbeat_ms: number;
}

export interface TaskManagerList {
  task_managers: TaskManagerInfo[];
  slots_available: number;
  subtasks_run_in: string;
  heartbeat_timeout_ms: number;
}

export interface TaskManagerSubtask { vertex: number; vertex_name: string; metrics: SubtaskMetrics }

export interface TaskManagerDetails extends TaskManagerInfo {
  heartbeat_age_ms: number;
  memory_rss_bytes: number | null;
  subtasks: TaskManagerSubtask[];
}

export interface SavepointStatus {
  trigger_id: string;
  state: "IN_PROGRESS" | "COMPLETED" | "FAILED";
  path: string | null;
  failure: string | null;
}

export interface RescaleStatus {
  trigger_id: string;
  state: "IN_PROGRESS" | "COMPLETED" | "FAILED";
  parallelism: number;
  savepoint_path: string | null;
  failure: string | null;
}

export interface ClusterConfig {
  version: string;
  execution: string;
  parallelism: number | null;
  max_parallelism: number | null;
  storage_url: string | null;
  checkpoint_interval_ms: number | null;
  savepoint_dir: string | null;
  restore_path: string | null;
}

export interface ErrorBody { error: string; message: string }
