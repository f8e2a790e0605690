"""The web access-log source: from log files to ``landing.weblog_access`` and ``store_weblog.access``.

Modules, in the order a line passes through them:

* :mod:`etl.weblog.discovery` - the files ``[weblog] paths`` matches, and the ones skipped
  (links outside the log folders, not regular files, unreadable, damaged gzip) with a reason;
* :mod:`etl.weblog.files` - a log file's identity across rotation and compression, reading
  new complete lines a block at a time (a gzip all or nothing);
* :mod:`etl.weblog.parse` - the Combined/Common Log Format parser (a block of lines ->
  fields, or a reject reason);
* :mod:`etl.weblog.enrich` - the staged row of a parsed line: its key, country and device,
  using :mod:`etl.weblog.geo` (IP address -> country: offline database or ipinfo) and
  :mod:`etl.weblog.device` (user agent -> device, device type, OS, browser);
* :mod:`etl.weblog.load` - the work of the three Luigi steps (extract into staging,
  landing, store) and the read positions in ``etl_control``.

Importing the package runs no code; the modules are imported by name.
"""
