-- The 5 devices with most logins last year (previous calendar year, by
-- request_timestamp_converted, UTC). A login is a request with a username (not '-').
-- Columns: device, request_count (logins), user_count (distinct usernames).
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
)

select
    device,
    count(*) as request_count,
    count(distinct username) as user_count
from logins
group by device
order by request_count desc, device collate "C"
limit 5;
