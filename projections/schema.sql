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
