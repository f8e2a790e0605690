-- pres.dim_date
-- Grain: one row per calendar day. Key: date_key = YYYYMMDD (integer); unknown member -1
-- (no date, e.g. an access-log line whose timestamp could not be read).
-- Covers every order date and request date (UTC) plus today; each run adds the days of
-- the rows stored or changed since the previous build.

create schema if not exists pres;

create table if not exists etl_control.pres_watermark (name text primary key, value timestamptz not null);

create table if not exists pres.dim_date (
    date_key integer primary key,
    full_date date unique,
    year smallint,
    quarter smallint,
    month smallint,
    month_name text,
    year_month char(7),
    day_of_month smallint,
    day_of_week smallint,
    day_name text,
    iso_week smallint,
    is_weekend boolean
);

insert into pres.dim_date (date_key, full_date, month_name, day_name)
values (-1, null, 'Unknown', 'Unknown')
on conflict (date_key) do nothing;

with
bounds as (
    select
        least(
            (select min(order_date) from store_mysql.order_lines where etl_updated_datetime >= watermark.since),
            (select min(request_timestamp_converted)::date from store_weblog.access
             where not request_timestamp_has_issue and etl_updated_datetime >= watermark.since),
            current_date
        ) as first_day,
        greatest(
            (select max(order_date) from store_mysql.order_lines where etl_updated_datetime >= watermark.since),
            (select max(request_timestamp_converted)::date from store_weblog.access
             where not request_timestamp_has_issue and etl_updated_datetime >= watermark.since),
            current_date
        ) as last_day
    from (select coalesce((select value from etl_control.pres_watermark where name = 'dim_date'), '-infinity'::timestamptz) as since) as watermark
),

days as (
    select generate_series(bounds.first_day, bounds.last_day, interval '1 day')::date as full_date
    from bounds
)

insert into pres.dim_date
select
    to_char(days.full_date, 'YYYYMMDD')::integer as date_key,
    days.full_date,
    extract(year from days.full_date)::smallint as year,
    extract(quarter from days.full_date)::smallint as quarter,
    extract(month from days.full_date)::smallint as month,
    to_char(days.full_date, 'FMMonth') as month_name,
    to_char(days.full_date, 'YYYY-MM') as year_month,
    extract(day from days.full_date)::smallint as day_of_month,
    extract(isodow from days.full_date)::smallint as day_of_week,
    to_char(days.full_date, 'FMDay') as day_name,
    extract(week from days.full_date)::smallint as iso_week,
    extract(isodow from days.full_date) in (6, 7) as is_weekend
from days
on conflict (date_key) do nothing;

insert into etl_control.pres_watermark (name, value) values ('dim_date', now())
on conflict (name) do update set value = excluded.value;
