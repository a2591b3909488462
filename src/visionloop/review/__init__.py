"""The data engine: auto-annotation, the review queue and exchange with labeling tools.

- :mod:`~visionloop.review.routing`   the routing policy (pure): a priority per image and its reasons
- :mod:`~visionloop.review.autolabel` proposals of the production model on unlabeled images
- :mod:`~visionloop.review.queue`     the review queue: next, get, list, stats, decide, image bytes
- :mod:`~visionloop.review.boxes`     checking a reviewer's boxes against the image and the classes
- :mod:`~visionloop.review.exchange`  the open queue out to labeling tools, their answers back in as decisions
- :mod:`~visionloop.review.label_studio`, :mod:`~visionloop.review.coco_cvat`  the two exchange formats (pure)
"""
