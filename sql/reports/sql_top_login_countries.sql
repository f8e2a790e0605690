-- Top 10 IP countries by distinct logged-in users last year (previous calendar year, by
-- request_timestamp_converted, UTC). A login is a request with a username (not '-');
-- requests whose IP has no country (private, reserved, unknown) are not counted.
-- Columns: rank (1..10), country (ISO-2), user_count, request_count (logins), period_start and
-- period_end (the first and last day of last year, the same on every row).
-- Order: user_count desc, request_count desc, country (byte order).

with
bounds as (
    select
        (date_trunc('year', current_date) - interval '1 year')::timestamp as first_moment,
        date_trunc('year', current_date)::timestamp as next_year
),

by_country as (
    select
        access.country,
        count(distinct access.username) as user_count,
        count(*) as request_count
    from pres.report_weblog_access as access
    cross join bounds
    where
        access.username <> '-'
        and access.country <> ''
        and access.request_timestamp_converted >= bounds.first_moment
        and access.request_timestamp_converted < bounds.next_year
    group by access.country
)

select
    row_number() over (order by user_count desc, request_count desc, country collate "C") as rank,
    country,
    user_count,
    request_count,
    bounds.first_moment::date as period_start,
    (bounds.next_year - interval '1 day')::date as period_end
from by_country
cross join bounds
order by rank
limit 10;
