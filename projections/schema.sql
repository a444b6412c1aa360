-- Read models. Everything here can be dropped and rebuilt from the event store.
create table if not exists view_positions (
    view text primary key,
    position bigint not null,   -- global position of the last event applied
    stream_seq bigint not null  -- its JetStream sequence, where the consumer resumes
);

create table if not exists relay_checkpoint (
    id int primary key,
    position bigint not null
);

create table if not exists users_view (
    id uuid primary key,
    identity text not null,
    name text not null,
    metadata jsonb not null default '{}',
    tags jsonb not null default '[]',
    role text not null,
    status text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    created_pos bigint not null
);
create index if not exists users_view_order on users_view (created_pos);
create index if not exists users_view_identity on users_view (identity);

-- Things. Lists filter by owner (or a share), status, exact name and metadata containment,
-- ordered by creation position; exact totals need every match counted, so each filter
-- has an index: a list stays an index scan with a million things.
create table if not exists things_view (
    id uuid primary key,
    owner uuid not null,
    name text not null,
    secret text not null,
    tags jsonb not null default '[]',
    metadata jsonb not null default '{}',
    status text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    created_pos bigint not null
);
create index if not exists things_view_owner on things_view (owner, status, created_pos);
create index if not exists things_view_owner_all on things_view (owner, created_pos);
create index if not exists things_view_order on things_view (created_pos);
create index if not exists things_view_name on things_view (name);
create index if not exists things_view_metadata on things_view using gin (metadata jsonb_path_ops);

-- Who else may see or change a thing: maintained from Thing.Shared events.
create table if not exists thing_shares (
    thing_id uuid not null,
    user_id uuid not null,
    actions text[] not null,
    primary key (thing_id, user_id)
);
create index if not exists thing_shares_user on thing_shares (user_id, thing_id);

create table if not exists channels_view (
    id uuid primary key,
    owner uuid not null,
    name text not null,
    description text not null default '',
    metadata jsonb not null default '{}',
    status text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    created_pos bigint not null
);
create index if not exists channels_view_owner on channels_view (owner, status, created_pos);
create index if not exists channels_view_owner_all on channels_view (owner, created_pos);
create index if not exists channels_view_order on channels_view (created_pos);
create index if not exists channels_view_name on channels_view (name);
create index if not exists channels_view_metadata on channels_view using gin (metadata jsonb_path_ops);

create table if not exists channel_shares (
    channel_id uuid not null,
    user_id uuid not null,
    actions text[] not null,
    primary key (channel_id, user_id)
);
create index if not exists channel_shares_user on channel_shares (user_id, channel_id);

-- The audit log: every event, credentials redacted. Paged by position.
create table if not exists events_view (
    position bigint primary key,
    aggregate text not null,
    aggregate_id uuid not null,
    version int not null,
    type text not null,
    occurred_at timestamptz not null,
    actor text,
    correlation_id text,
    causation_id text,
    data jsonb not null
);
create index if not exists events_view_entity on events_view (aggregate_id, position);
create index if not exists events_view_type on events_view (aggregate, type, position);
create index if not exists events_view_actor on events_view (actor, position);
create index if not exists events_view_correlation on events_view (correlation_id, position);
create index if not exists events_view_time on events_view (occurred_at);
