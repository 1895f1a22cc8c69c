"""The node-to-node protocol of infracms, as a library (wire models, signed messages, catalogs).

It imports nothing from infracms' database, API, web or services.
"""
