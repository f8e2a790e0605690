-- The 5 devices with most logins last year (previous calendar year, by
-- request_timestamp_converted, UTC). A login is a request with a username (not '-').
-- Columns: device, request_count (logins), user_count (distinct usernames), period_start and
-- period_end (the first and last day of last year, the same on every row).
-- Order: request_count desc, then device name (byte order).

with
bounds as (
    select
        (date_trunc('year', current_date) - interval '1 year')::timestamp as first_moment,
        date_trunc('year', current_date)::timestamp as next_year
),

logins as (
    select access.device, access.username
    from pres.report_weblog_access as access
    cross join bounds
    where
        access.username <> '-'
        and access.request_timestamp_converted >= bounds.first_moment
        and access.request_timestamp_converted < bounds.next_year
),

by_device as (
    select
        device,
        count(*) as request_count,
        count(distinct username) as user_count
    from logins
    group by device
)

select
    by_device.device,
    by_device.request_count,
    by_device.user_count,
    bounds.first_moment::date as period_start,
    (bounds.next_year - interval '1 day')::date as period_end
from by_device
cross join bounds
order by by_device.request_count desc, by_device.device collate "C"
limit 5;
