"""FastAPI dependencies that hand handlers the app's resources."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import get_session
from src.resources import Resources


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ResourcesDep = Annotated[Resources, Depends(get_resources)]
