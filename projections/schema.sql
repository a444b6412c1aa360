-- Read models. Everything here can be dropped and rebuilt from the event store.
create table if not exists view_positions (
    view text primary key,
    position bigint not null,   -- global position of the last event applied
    stream_seq bigint not null  -- its JetStream sequence, where the consumer resumes
);
-- The position of the last event a handler of the view ran for (rows may have changed there).
alter table view_positions add column if not exists changed bigint not null default 0;

-- Views that cannot move: written by the projector while a view fails on an event, deleted
-- when it applies again; /health of any process reads it (infra.viewstatus).
create table if not exists view_status (
    view text primary key,
    failing_since timestamptz not null,
    position bigint,            -- the event it fails on (null: the failure is not an event's)
    event_type text,
    error text not null,        -- the cause, without the database's DETAIL (row values)
    retries int not null default 0,
    updated_at timestamptz not null
);

-- Each Redis view's own record of where it is: its marker (also in Redis, ``epoch:{view}``)
-- and a position and stream sequence it reached. Redis without that marker, or behind that
-- position, lost the view (workers.redisguard rebuilds it).
create table if not exists redis_views (
    view text primary key,
    epoch text not null,
    position bigint not null,
    stream_seq bigint not null
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
-- Thing secrets, for the message path while a Redis view is rebuilt (command_api.sqlauth).
create index if not exists things_view_secret on things_view using hash (secret);

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

-- Bootstrap configurations, one per thing; gateways find theirs by external id.
create table if not exists configs_view (
    thing_id uuid primary key,
    config_id uuid,
    owner uuid not null,
    external_id text not null,
    external_key text not null,
    name text not null,
    content text not null,
    channels jsonb not null default '[]',
    client_cert text not null default '',
    client_key text not null default '',
    ca_cert text not null default '',
    state int not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    created_pos bigint not null
);
create unique index if not exists configs_view_external on configs_view (external_id);
create index if not exists configs_view_config on configs_view (config_id);
create index if not exists configs_view_owner on configs_view (owner, created_pos);

-- Issued client certificates (never their keys); revoked ones feed the CRL.
create table if not exists certs_view (
    serial text primary key,
    thing_id uuid not null,
    owner uuid not null,
    cert text not null,
    expires_at timestamptz not null,
    issued_at timestamptz not null,
    revoked_at timestamptz,
    created_pos bigint not null
);
create index if not exists certs_view_thing on certs_view (thing_id, created_pos);
create index if not exists certs_view_revoked on certs_view (revoked_at) where revoked_at is not null;

-- Connections of things to channels (one row per pair ever connected; active while connected),
-- listed from either side in the order they were made.
create table if not exists connections (
    id uuid primary key,
    channel_id uuid not null,
    thing_id uuid not null,
    owner uuid,
    actions text[] not null,
    active boolean not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    created_pos bigint not null
);
create index if not exists connections_channel on connections (channel_id, created_pos) where active;
create index if not exists connections_thing on connections (thing_id, created_pos) where active;

-- Users assigned to channels by their owners (Policy aggregates).
create table if not exists channel_policies (
    id uuid primary key,
    subject uuid not null,
    object uuid not null,
    owner uuid,
    actions text[] not null,
    active boolean not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    created_pos bigint not null
);
create index if not exists channel_policies_subject on channel_policies (subject, object) where active;
create index if not exists channel_policies_object on channel_policies (object, created_pos) where active;

-- Provisionings (the saga's instances): status and last move, to find abandoned ones.
create table if not exists provisionings_view (
    id uuid primary key,
    owner uuid not null,
    external_id text not null,
    status text not null,
    attempt int not null,
    updated_at timestamptz not null
);
create index if not exists provisionings_view_open on provisionings_view (status, updated_at)
    where status in ('running', 'compensating');

-- How many things and channels each owner has in each status, kept with the rows, so that
-- the total of an unfiltered list is a lookup instead of a count over a million rows.
create table if not exists things_counts (
    owner uuid not null,
    status text not null,
    n bigint not null,
    primary key (owner, status)
);
create table if not exists channels_counts (
    owner uuid not null,
    status text not null,
    n bigint not null,
    primary key (owner, status)
);
