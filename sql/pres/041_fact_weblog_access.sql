-- pres.fact_weblog_access
-- Grain: one row per access-log request. Key: access_key (degenerate dimension).
-- Dimension keys: request_date_key (dim_date, UTC day of request_timestamp_converted; -1
-- when the timestamp could not be read), device_key (dim_device), country_key
-- (dim_country of the IP; -1 when unknown), customer_key (dim_customer by username; -1
-- for anonymous requests and unknown usernames).
-- Measures: request_count (1), response_size; attributes: status_code, is_login.
-- Maintained incrementally: requests stored since the previous build, and logged-in
-- requests still pointing at the unknown customer, are recomputed.

create table if not exists pres.fact_weblog_access (
    access_key text primary key,
    request_date_key integer not null,
    device_key integer not null,
    country_key integer not null,
    customer_key integer not null,
    status_code smallint,
    is_login boolean not null,
    request_count integer not null,
    response_size bigint,
    etl_updated_datetime timestamptz not null
);

-- requests pointing at an unknown member: logged-in requests without their customer are
-- looked at again every run, and the quality step counts them all; this partial index holds
-- only them (PostgreSQL; Redshift has no indexes and skips the statement)
create index if not exists fact_weblog_access_unknown_member_idx on pres.fact_weblog_access (access_key)
where request_date_key = -1 or device_key = -1 or country_key = -1 or (customer_key = -1 and is_login);

drop table if exists tmp_access_changed;
create temporary table tmp_access_changed as
select access.access_key
from store_weblog.access as access
where access.etl_updated_datetime >= (select since from pres_build)
union
select fact.access_key
from pres.fact_weblog_access as fact
where fact.is_login and fact.customer_key = -1;

analyze tmp_access_changed;

delete from pres.fact_weblog_access as fact
using tmp_access_changed as changed
where fact.access_key = changed.access_key;

insert into pres.fact_weblog_access
select
    access.access_key,
    case when access.request_timestamp_has_issue then -1
         else coalesce(dates.date_key, -1) end as request_date_key,
    coalesce(devices.device_key, -1) as device_key,
    coalesce(countries.country_key, -1) as country_key,
    coalesce(customers.customer_key, -1) as customer_key,
    access.status_code,
    access.username <> '-' as is_login,
    1 as request_count,
    access.response_size,
    now() as etl_updated_datetime
from store_weblog.access as access
inner join tmp_access_changed as changed on changed.access_key = access.access_key
left join pres.dim_date as dates on dates.full_date = access.request_timestamp_converted::date
left join pres.dim_device as devices on devices.device = access.device and devices.device_type = access.device_type
left join pres.dim_country as countries on countries.country_code = access.country
left join pres.dim_customer as customers on customers.username = access.username and access.username <> '-';

drop table tmp_access_changed;
