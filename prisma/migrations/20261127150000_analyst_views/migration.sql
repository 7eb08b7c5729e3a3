-- Analysts' SQL (SPEC section 11, docs/SQL.md): schema `mailjet` holds one view per Segment
-- collection and `tracks`, with Segment's warehouse column names. Each row is computed from the
-- stored event (its columns and its payload, nothing else) the way the worker maps it
-- (libs/segment/src/segment-track.mapper.ts): the same id (messageId), event names, properties,
-- userId or anonymousId. The helpers stay in `public`, so that `mailjet` lists the eight views only.

-- USER_ID_PAYLOAD_KEY for the views: the api and the worker write their configuration here at every
-- start (AnalystViewSettings); one row, which the migration makes with the default.
CREATE TABLE "analyst_view_settings" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "user_id_payload_key" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "analyst_view_settings_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "analyst_view_settings_one_row" CHECK ("id" = 1)
);
INSERT INTO "analyst_view_settings" ("id", "user_id_payload_key") VALUES (1, 'userId');

-- JSON text without what PostgreSQL's text cannot hold, for the few payloads that have it: an
-- escaped NUL (\u0000) becomes `nul_as` ('' drops it, as ingest drops NULs from the key columns), a
-- lone surrogate escape becomes U+FFFD. Escaped backslashes and surrogate pairs are kept: the text
-- is cut into tokens (a pair, a NUL, a lone surrogate, any other escape, a run without backslash).
CREATE FUNCTION analyst_storable_json_text(json_text text, nul_as text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(
           CASE WHEN m.token[1] = '\u0000' THEN nul_as
                WHEN length(m.token[1]) = 6 AND m.token[1] ~ '^\\u[dD]' THEN '\ufffd'
                ELSE m.token[1] END,
           '' ORDER BY m.n), '')
  FROM regexp_matches(
         json_text,
         '\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\\.|[^\\]+',
         'g') WITH ORDINALITY AS m(token, n)
$$;

-- The JSON as json's functions can read it: json's ->> refuses a whole document that holds \u0000
-- or a lone surrogate anywhere ("unsupported Unicode escape sequence"). Most payloads have no \u
-- at all and are returned as they are, after one strpos. (Not STRICT, so that it is inlined.)
CREATE FUNCTION analyst_readable_json(document json, nul_as text) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN strpos(document::text, '\u') = 0 OR document::text !~ '\\u(0000|[dD][89a-fA-F])' THEN document
              ELSE analyst_storable_json_text(document::text, nul_as)::json END
$$;

-- The top-level fields of an event that the mapping reads, each as its JSON text (json keeps
-- numbers digit for digit), read in one pass over the payload.
CREATE TYPE "analyst_event_fields" AS (
    "Payload" json,
    "mj_campaign_id" json,
    "customcampaign" json,
    "mj_contact_id" json,
    "CustomID" json,
    "ip" json,
    "agent" json,
    "geo" json,
    "url" json,
    "mj_list_id" json,
    "hard_bounce" json,
    "blocked" json,
    "error_related_to" json,
    "error" json,
    "comment" json,
    "source" json,
    "smtp_reply" json
);

CREATE FUNCTION analyst_event_fields(payload json) RETURNS analyst_event_fields
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT json_populate_record(NULL::analyst_event_fields, analyst_readable_json(payload, ''))
$$;

-- No helper has an exception block: PostgreSQL refuses to start one while a query runs in
-- parallel ("cannot start subtransactions during a parallel operation"), and analysts' queries on
-- a large table do.

-- A JSON number literal as JavaScript's String(Number(literal)) writes it: the double nearest to it
-- (Infinity beyond the largest, 0 below half the smallest), in the shortest digits that read back
-- as that double (PostgreSQL's float8 output with extra_float_digits > 0), laid out by ECMAScript's
-- Number::toString (plain from 1e-6 to 1e21, with an exponent outside).
CREATE FUNCTION analyst_js_number(literal text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET extra_float_digits = 1 AS $$
DECLARE
  parts text[] := regexp_match(literal, '^(-?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$');
  sign text := parts[1];
  significant text;
  magnitude bigint;
  exact numeric;
  value double precision;
  shortest text;
  mantissa text;
  digits text;
  point integer;
  exponent integer;
BEGIN
  IF parts IS NULL THEN RETURN NULL; END IF;
  -- Most numbers: an integer of 15 digits or fewer is exact in a double.
  IF literal ~ '^-?[0-9]{1,15}$' THEN RETURN CASE WHEN literal = '-0' THEN '0' ELSE literal END; END IF;
  -- The value is 0.<significant> x 10^magnitude.
  significant := ltrim(coalesce(parts[2], '') || coalesce(parts[3], ''), '0');
  IF significant = '' THEN RETURN '0'; END IF;
  IF length(coalesce(parts[4], '')) > 12 THEN
    RETURN CASE WHEN parts[4] LIKE '-%' THEN '0' ELSE sign || 'Infinity' END;
  END IF;
  magnitude := coalesce(parts[4], '0')::bigint + length(significant) - length(coalesce(parts[3], ''));
  IF magnitude > 309 THEN RETURN sign || 'Infinity'; END IF;
  IF magnitude < -323 THEN RETURN '0'; END IF;
  -- 800 digits decide the rounding of any double; a 1 after them stands for the ones cut.
  exact := ('0.' || CASE WHEN length(significant) > 800 THEN left(significant, 800) || '1' ELSE significant END || 'e' || magnitude)::numeric;
  IF exact >= 2::numeric ^ 1024 - 2::numeric ^ 970 THEN RETURN sign || 'Infinity'; END IF;
  IF exact * 2::numeric ^ 1075 <= 1 THEN RETURN '0'; END IF;
  value := exact::double precision;
  shortest := value::text;
  mantissa := split_part(shortest, 'e', 1);
  exponent := coalesce(nullif(split_part(shortest, 'e', 2), '')::integer, 0);
  point := coalesce(nullif(strpos(mantissa, '.'), 0) - 1, length(mantissa));
  digits := replace(mantissa, '.', '');
  -- ECMAScript's n: the value is 0.<digits> x 10^n.
  exponent := exponent + point - (length(digits) - length(ltrim(digits, '0')));
  digits := rtrim(ltrim(digits, '0'), '0');
  RETURN sign || CASE
    WHEN length(digits) <= exponent AND exponent <= 21 THEN digits || repeat('0', exponent - length(digits))
    WHEN 0 < exponent AND exponent <= 21 THEN left(digits, exponent) || '.' || substr(digits, exponent + 1)
    WHEN -6 < exponent AND exponent <= 0 THEN '0.' || repeat('0', -exponent) || digits
    ELSE left(digits, 1) || CASE WHEN length(digits) > 1 THEN '.' || substr(digits, 2) ELSE '' END
         || 'e' || CASE WHEN exponent - 1 >= 0 THEN '+' ELSE '-' END || abs(exponent - 1)::text
  END;
END $$;

-- Whether a text is one JSON value, as JSON.parse (and PostgreSQL's json input) decides, without
-- an error for one that is not: every token checked by one regular expression, then the structure,
-- with each string turned into s, each other scalar into v, and the innermost arrays and objects
-- into v until one v is left. (PostgreSQL 16 would say pg_input_is_valid(text, 'json').)
CREATE FUNCTION analyst_is_json_text(candidate text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  skeleton text;
  previous text;
BEGIN
  IF candidate !~ '^(?:[ \t\n\r]|"(?:[^"\\\x01-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|[][{}:,])*$' THEN
    RETURN false;
  END IF;
  skeleton := regexp_replace(candidate, '"(?:[^"\\]|\\.)*"', 's', 'g');
  skeleton := regexp_replace(skeleton, '-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null', 'v', 'g');
  skeleton := regexp_replace(skeleton, '[ \t\n\r]+', '', 'g');
  -- One level per round; ingest refuses a Payload nested deeper than 32 levels.
  FOR round IN 1..64 LOOP
    previous := skeleton;
    skeleton := regexp_replace(skeleton, '\{(?:s:[sv](?:,s:[sv])*)?\}|\[(?:[sv](?:,[sv])*)?\]', 'v', 'g');
    EXIT WHEN skeleton = previous;
  END LOOP;
  RETURN skeleton IN ('s', 'v');
END $$;

-- A property as the worker sends it, as text: a string as it is ('' is no property), a number as
-- String() writes it after the webhook's parser (which keeps integers beyond 2^53 as their digits,
-- so every integer literal keeps its digits), true/false, an object or array as its JSON.
CREATE FUNCTION analyst_property_text(value json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE left(value::text, 1)
           WHEN '"' THEN nullif(value #>> '{}', '')
           WHEN 'n' THEN NULL
           WHEN 't' THEN 'true'
           WHEN 'f' THEN 'false'
           WHEN '{' THEN value::text
           WHEN '[' THEN value::text
           ELSE CASE WHEN value::text = '-0' THEN '0'
                     WHEN value::text ~ '^-?[0-9]+$' THEN value::text
                     ELSE analyst_js_number(value::text) END
         END
$$;

-- A boolean property (hard_bounce, blocked): JSON true or false; null for anything else.
CREATE FUNCTION analyst_property_boolean(value json) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE value::text WHEN 'true' THEN true WHEN 'false' THEN false END
$$;

-- A context field (ip, agent, geo): the worker takes it only when it is a non-empty string.
CREATE FUNCTION analyst_context_text(value json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN left(value::text, 1) = '"' THEN nullif(value #>> '{}', '') END
$$;

-- The userId the worker reads from the event's Payload under `key` (USER_ID_PAYLOAD_KEY):
-- Payload is a JSON text set at send time, read with JSON.parse (numbers through a double), or,
-- from a hand-made event, an object (read with the event, integers exact); the value counts when it
-- is a non-empty string or a number. Anything else gives null, never an error: a Payload that is
-- not JSON too (checked only when it starts like JSON: most Payloads are empty).
CREATE FUNCTION analyst_payload_user_id(payload json, event json, key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  payload_text text;
  parsed json;
  value json;
BEGIN
  IF payload IS NULL OR key IS NULL THEN RETURN NULL; END IF;
  IF left(payload::text, 1) = '{' THEN
    value := payload -> key;
    RETURN CASE WHEN left(value::text, 1) = '"' THEN nullif(value #>> '{}', '')
                WHEN left(value::text, 1) ~ '[-0-9]' THEN analyst_property_text(value) END;
  END IF;
  IF left(payload::text, 1) <> '"' THEN RETURN NULL; END IF;
  payload_text := payload #>> '{}';
  -- Most Payloads are empty; JSON.parse would fail on any text that does not start like this.
  IF payload_text !~ '^[ \t\n\r]*[[{]' THEN RETURN NULL; END IF;
  IF strpos(event::text, '\u0000') > 0 THEN
    -- The payload's columns dropped an escaped NUL; JSON.parse sees it and fails: keep a control
    -- character in its place, which PostgreSQL's JSON parser refuses just the same.
    payload_text := ((json_populate_record(NULL::analyst_event_fields, analyst_readable_json(event, '\u0001')))."Payload") #>> '{}';
  END IF;
  IF NOT analyst_is_json_text(payload_text) THEN RETURN NULL; END IF;
  parsed := analyst_readable_json(payload_text::json, '');
  IF json_typeof(parsed) <> 'object' THEN RETURN NULL; END IF;
  value := parsed -> key;
  RETURN CASE WHEN left(value::text, 1) = '"' THEN nullif(value #>> '{}', '')
              WHEN left(value::text, 1) ~ '[-0-9]' THEN analyst_js_number(value::text) END;
END $$;

-- Every real event (not invalid, not a duplicate) with every column of the mailjet views; those
-- select from it. Not for analysts: `mailjet.*` is the contract (docs/SQL.md).
--
-- The payload is read once per row, and only when a column that needs it is selected: the lateral
-- subqueries are kept apart (OFFSET 0), so the planner evaluates their outputs once per row and
-- replaces the ones nobody selects with NULL; `count(*) ... where "timestamp" > ...` reads the
-- event_time index and no JSON. The joins to sources and identities are on unique keys, so the
-- planner drops them when their columns are not selected.
CREATE VIEW analyst_events AS
SELECT
    e.event_type,
    'mailjet-' || encode(sha256(convert_to(e.dedupe_key, 'UTF8')), 'hex') AS id,
    s.slug AS source,
    CASE e.event_type
        WHEN 'sent' THEN 'email_delivered'
        WHEN 'open' THEN 'email_opened'
        WHEN 'click' THEN 'email_link_clicked'
        WHEN 'bounce' THEN 'email_bounced'
        WHEN 'spam' THEN 'email_marked_as_spam'
        WHEN 'unsub' THEN 'email_unsubscribed'
        WHEN 'blocked' THEN 'email_blocked'
    END AS event,
    CASE e.event_type
        WHEN 'sent' THEN 'Email Delivered'
        WHEN 'open' THEN 'Email Opened'
        WHEN 'click' THEN 'Email Link Clicked'
        WHEN 'bounce' THEN 'Email Bounced'
        WHEN 'spam' THEN 'Email Marked as Spam'
        WHEN 'unsub' THEN 'Email Unsubscribed'
        WHEN 'blocked' THEN 'Email Blocked'
    END AS event_text,
    e.event_time AS "timestamp",
    e.received_at,
    e.forwarded_at,
    coalesce(p.payload_user_id, i.user_id) AS user_id,
    CASE WHEN p.payload_user_id IS NULL AND i.user_id IS NULL THEN e.email END AS anonymous_id,
    e.email AS context_traits_email,
    -- Open, click and unsub come from the recipient's client; the other types carry no context.
    CASE WHEN e.event_type IN ('open', 'click', 'unsub') THEN analyst_context_text((p.fields).ip) END AS context_ip,
    CASE WHEN e.event_type IN ('open', 'click', 'unsub') THEN analyst_context_text((p.fields).agent) END AS context_user_agent,
    CASE WHEN e.event_type IN ('open', 'click', 'unsub') THEN analyst_context_text((p.fields).geo) END AS context_location_country,
    -- The key columns hold what the worker sends: MessageID's exact digits, the GUID without NULs.
    e.message_id AS email_id,
    e.message_guid,
    analyst_property_text((p.fields).mj_campaign_id) AS campaign_id,
    analyst_property_text((p.fields).customcampaign) AS campaign_name,
    analyst_property_text((p.fields).mj_contact_id) AS contact_id,
    analyst_property_text((p.fields)."CustomID") AS custom_id,
    analyst_property_text((p.fields).url) AS link_url,
    analyst_property_text((p.fields).mj_list_id) AS list_id,
    analyst_property_boolean((p.fields).hard_bounce) AS hard_bounce,
    analyst_property_boolean((p.fields).blocked) AS blocked,
    analyst_property_text((p.fields).error_related_to) AS error_related_to,
    analyst_property_text((p.fields).error) AS error,
    analyst_property_text((p.fields).comment) AS comment,
    analyst_property_text((p.fields).source) AS spam_source,
    analyst_property_text((p.fields).smtp_reply) AS smtp_reply
FROM mailjet_events e
LEFT JOIN sources s ON s.id = e.source_id
LEFT JOIN identities i ON i.email = lower(e.email)
CROSS JOIN LATERAL (
    SELECT f.fields,
           analyst_payload_user_id((f.fields)."Payload", e.payload, (SELECT user_id_payload_key FROM analyst_view_settings)) AS payload_user_id
    FROM (SELECT analyst_event_fields(e.payload) AS fields OFFSET 0) f
    OFFSET 0
) p
WHERE e.status NOT IN ('invalid', 'duplicate')
  AND e.event_type IN ('sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub');

CREATE SCHEMA "mailjet";

-- The columns every collection has: Segment's tracks table, one row per event of any type.
CREATE VIEW mailjet.tracks AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id
FROM analyst_events;

CREATE VIEW mailjet.email_delivered AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id,
       smtp_reply
FROM analyst_events WHERE event_type = 'sent';

CREATE VIEW mailjet.email_opened AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id
FROM analyst_events WHERE event_type = 'open';

CREATE VIEW mailjet.email_link_clicked AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id,
       link_url
FROM analyst_events WHERE event_type = 'click';

CREATE VIEW mailjet.email_unsubscribed AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id,
       list_id
FROM analyst_events WHERE event_type = 'unsub';

CREATE VIEW mailjet.email_bounced AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id,
       hard_bounce, blocked, error_related_to, error, comment
FROM analyst_events WHERE event_type = 'bounce';

-- Spam's `source` property (the feedback loop that reported it) is `spam_source`: `source` is the bridge's source.
CREATE VIEW mailjet.email_marked_as_spam AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id,
       spam_source
FROM analyst_events WHERE event_type = 'spam';

CREATE VIEW mailjet.email_blocked AS
SELECT id, source, event, event_text, "timestamp", received_at, forwarded_at, user_id, anonymous_id,
       context_traits_email, context_ip, context_user_agent, context_location_country,
       email_id, message_guid, campaign_id, campaign_name, contact_id, custom_id,
       error_related_to, error
FROM analyst_events WHERE event_type = 'blocked';
