"""The chapter's example business services: goods, members and purchases."""
