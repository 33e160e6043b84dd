"""Management reviews (9.3): the calendar, the pack and its rendering, results from people, and the
review flow.
"""
